"""A worker refuses to start with an unset, short, shared or well-known secret unless development mode is on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crownstream.settings import DEV_UNSUBSCRIBE_SECRET, SECRETS, InsecureSecrets, Settings

REPO = Path(__file__).resolve().parents[3]
STRONG = {name: f"{name}-" + "x" * 40 for name in SECRETS}


def test_strong_distinct_secrets_pass():
    settings = Settings(dev_mode=False, **STRONG)
    assert settings.secret_problems() == []
    settings.check_secrets()
    assert settings.unsubscribe_key == STRONG["unsubscribe_secret"]
    assert settings.user_token_signing_key == STRONG["user_token_key"]


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize(
    "value, says",
    [
        (None, "is not set"),
        ("", "is not set"),
        ("change-me", "well-known"),
        ("CHANGE-ME ", "well-known"),
        ("test-token", "well-known"),
        (DEV_UNSUBSCRIBE_SECRET, "well-known"),
        ("a" * 31, "31 characters"),
    ],
)
def test_each_weak_secret_is_named(name, value, says):
    settings = Settings(dev_mode=False, **{**STRONG, name: value})
    (problem,) = settings.secret_problems()
    assert f"CROWNSTREAM_{name.upper()}" in problem and says in problem
    with pytest.raises(InsecureSecrets, match=f"CROWNSTREAM_{name.upper()}"):
        settings.check_secrets()


def test_one_value_for_two_secrets_is_refused():
    settings = Settings(dev_mode=False, **{**STRONG, "unsubscribe_secret": STRONG["staff_token"]})
    assert any("same value" in p for p in settings.secret_problems())


def test_development_mode_starts_with_the_public_development_keys_but_nothing_opens_staff_routes():
    settings = Settings(dev_mode=True, staff_token=None, user_token_key=None, unsubscribe_secret=None)
    settings.check_secrets()
    assert settings.unsubscribe_key == DEV_UNSUBSCRIBE_SECRET
    assert settings.user_token_signing_key
    assert settings.staff_token is None  # an unset staff token still refuses every staff request


def test_outside_development_mode_an_unset_key_is_never_replaced_by_a_known_one():
    settings = Settings(dev_mode=False, staff_token=None, user_token_key=None, unsubscribe_secret=None)
    assert settings.user_token_signing_key is None
    with pytest.raises(InsecureSecrets):
        _ = settings.unsubscribe_key


def _start_worker(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CROWNSTREAM_")}
    # A port nothing listens on: a worker that did start would fail on Kafka, never reach a real broker's data.
    clean.update({"CROWNSTREAM_DEV_MODE": "false", "CROWNSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:9", **env})
    exe = Path(sys.executable).with_name("crownstream")
    return subprocess.run([str(exe), "worker"], env=clean, capture_output=True, text=True, timeout=60, cwd=REPO)


def test_the_worker_command_refuses_to_start_and_says_what_to_set():
    done = _start_worker(CROWNSTREAM_STAFF_TOKEN="change-me")
    assert done.returncode == 1
    assert "refusing to start a worker with unsafe secrets" in done.stderr
    assert "CROWNSTREAM_STAFF_TOKEN is a well-known value" in done.stderr
    assert "CROWNSTREAM_USER_TOKEN_KEY is not set" in done.stderr
    assert "CROWNSTREAM_DEV_MODE=true" in done.stderr
    assert "change-me" not in done.stderr.replace("CROWNSTREAM", "")  # the value itself is not echoed
