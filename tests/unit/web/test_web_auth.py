"""Credentials: the staff token, per-user tokens (JWT) and the route policies that use them."""

from __future__ import annotations

import time

import jwt
import pytest

from crownstream.settings import Settings
from crownstream.web.auth import (
    AUDIENCE,
    LEEWAY_S,
    PUBLIC,
    STAFF,
    USER,
    Principal,
    access,
    authenticate,
    authorize,
    mint_user_token,
    policy_of,
)
from crownstream.web.errors import HttpError

KEY = "k" * 40
STAFF_TOKEN = "s" * 40
SETTINGS = Settings(staff_token=STAFF_TOKEN, user_token_key=KEY, user_token_max_ttl_s=3600, dev_mode=False)


def status_of(header, settings=SETTINGS) -> int:
    try:
        authenticate(header, settings)
    except HttpError as exc:
        assert exc.message, "a refusal says what to do"
        return exc.status
    return 200


def forged(claims: dict, key: str = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def test_staff_token_and_user_token_give_their_principal():
    assert authenticate(f"Bearer {STAFF_TOKEN}", SETTINGS) == Principal(STAFF)
    assert authenticate(f"bearer {mint_user_token('ada', 60, SETTINGS)}", SETTINGS) == Principal(USER, "ada")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRhOnB3",
        f"Token {STAFF_TOKEN}",
        "Bearer wrong",
        "Bearer a.b.c",
        f"Bearer {STAFF_TOKEN[:-1]}",
        "Bearer \udcff\udcfe",  # how aiohttp hands over undecodable header bytes
        "Bearer tök.en.x",
        "Bearer a\x00b",
        "Bearer \x7f",
    ],
)
def test_missing_malformed_or_wrong_credentials_are_401(header):
    assert status_of(header) == 401


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # the HS512 forgery below uses the 40-byte test key
def test_user_token_claims_are_enforced():
    now = int(time.time())
    good = {"sub": "ada", "iat": now, "exp": now + 60, "aud": AUDIENCE}
    assert status_of(f"Bearer {forged(good)}") == 200
    assert status_of(f"Bearer {forged({k: v for k, v in good.items() if k != 'aud'})}") == 200  # aud is optional
    refused = [
        {**good, "exp": now - LEEWAY_S - 5},  # expired
        {k: v for k, v in good.items() if k != "exp"},  # no exp
        {k: v for k, v in good.items() if k != "iat"},  # no iat
        {k: v for k, v in good.items() if k != "sub"},  # no subject
        {**good, "iat": now - 10, "exp": now + 3600},  # lives longer than user_token_max_ttl_s
        {**good, "aud": "someone-else"},
        {**good, "sub": "a" * 129},
        {**good, "sub": "a\x00b"},
        {**good, "sub": ""},
        {**good, "iat": now + 3 * LEEWAY_S, "exp": now + 4 * LEEWAY_S},  # issued in the future
    ]
    for claims in refused:
        assert status_of(f"Bearer {forged(claims)}") == 401, claims
    assert status_of(f"Bearer {forged(good, key='x' * 40)}") == 401  # another key
    assert status_of(f"Bearer {forged(good, algorithm='HS512')}") == 401  # another algorithm
    unsigned = jwt.encode(good, None, algorithm="none")
    assert status_of(f"Bearer {unsigned}") == 401


def test_without_a_key_user_tokens_are_refused_never_open():
    token = mint_user_token("ada", 60, SETTINGS)
    no_key = Settings(staff_token=STAFF_TOKEN, user_token_key=None, dev_mode=False)
    assert status_of(f"Bearer {token}", no_key) == 401
    with pytest.raises(ValueError, match="USER_TOKEN_KEY"):
        mint_user_token("ada", 60, no_key)
    # Without a staff token configured, nothing is staff.
    assert status_of("Bearer ", Settings(staff_token=None, dev_mode=False)) == 401


def test_mint_refuses_bad_lifetimes_and_ids():
    for ttl in (0, -1, 3601):
        with pytest.raises(ValueError):
            mint_user_token("ada", ttl, SETTINGS)
    for user in ("", "a" * 129, "a\x00", "a\nb"):
        with pytest.raises(ValueError):
            mint_user_token(user, 60, SETTINGS)
    claims = jwt.decode(mint_user_token("ada", 60, SETTINGS), KEY, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == "ada" and claims["exp"] - claims["iat"] == 60


def test_policies():
    staff, ada = Principal(STAFF), Principal(USER, "ada")
    authorize(staff, STAFF)
    authorize(staff, USER, "bob")
    authorize(ada, USER, "ada")
    authorize(ada, PUBLIC)
    for policy, owner in ((STAFF, None), (USER, "bob"), (USER, None)):
        with pytest.raises(HttpError) as refused:
            authorize(ada, policy, owner)
        assert refused.value.status == 403


class _Request:
    def __init__(self, authorization):
        self.headers = {"Authorization": authorization} if authorization else {}


async def test_access_decorator_checks_before_the_view_runs(monkeypatch):
    monkeypatch.setattr("crownstream.web.auth.get_settings", lambda: SETTINGS)
    ran = []

    async def owner_lookup(request, params):
        return {"e1": "ada"}[params["endpoint_id"]]

    class View:
        @access(USER, owner="user_id")
        async def own(self, request, user_id):
            ran.append(user_id)
            return "ok"

        @access(USER, owner=owner_lookup)
        async def endpoint(self, request, endpoint_id):
            ran.append(endpoint_id)
            return "ok"

        @access(STAFF)
        async def staff_only(self, request):
            ran.append("staff")
            return "ok"

    view, ada = View(), f"Bearer {mint_user_token('ada', 60, SETTINGS)}"
    assert await view.own(_Request(ada), user_id="ada") == "ok"
    assert await view.endpoint(_Request(ada), endpoint_id="e1") == "ok"
    assert await view.own(_Request(f"Bearer {STAFF_TOKEN}"), user_id="bob") == "ok"
    for call, status in (
        (view.own(_Request(ada), user_id="bob"), 403),
        (view.own(_Request(None), user_id="ada"), 401),
        (view.staff_only(_Request(ada)), 403),
        (view.staff_only(_Request("Bearer x")), 401),
    ):
        with pytest.raises(HttpError) as refused:
            await call
        assert refused.value.status == status
    assert ran == ["ada", "e1", "bob"]
    assert policy_of(View.own) == USER and policy_of(View.staff_only) == STAFF
    with pytest.raises(ValueError):
        access(USER)
    with pytest.raises(ValueError):
        access(STAFF, owner="user_id")


def test_token_mint_command_prints_a_token_the_workers_accept():
    import os
    import subprocess

    from tests.support.services import REPO

    exe = str(REPO / ".venv" / "bin" / "crownstream")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CROWNSTREAM_")},
        "CROWNSTREAM_USER_TOKEN_KEY": KEY,
        "CROWNSTREAM_USER_TOKEN_MAX_TTL_S": "3600",
    }
    done = subprocess.run(
        [exe, "token", "mint", "ada", "--ttl", "120"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert authenticate(f"Bearer {done.stdout.strip()}", SETTINGS) == Principal(USER, "ada")
    too_long = subprocess.run(
        [exe, "token", "mint", "ada", "--ttl", "3601"], env=env, capture_output=True, text=True, timeout=60
    )
    assert too_long.returncode == 2 and "3600" in too_long.stderr and not too_long.stdout
    no_key = {k: v for k, v in env.items() if k != "CROWNSTREAM_USER_TOKEN_KEY"}
    refused = subprocess.run([exe, "token", "mint", "ada"], env=no_key, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "CROWNSTREAM_USER_TOKEN_KEY" in refused.stderr
