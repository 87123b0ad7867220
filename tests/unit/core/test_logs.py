from __future__ import annotations

import logging

import orjson

from crownstream.logs import JsonFormatter


def _format(msg: str, *args, **extra) -> dict:
    record = logging.LogRecord("crownstream.test", logging.WARNING, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return orjson.loads(JsonFormatter().format(record))


def test_one_json_object_with_extra_fields():
    entry = _format("dead-lettered %s", "record", event_id="e-1", offset=42)
    assert entry["msg"] == "dead-lettered record"
    assert entry["level"] == "warning" and entry["event_id"] == "e-1" and entry["offset"] == 42
    assert entry["ts"].endswith("+00:00")


def test_secrets_are_never_logged():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    entry = _format(
        f"endpoint secret {secret} with Bearer abc.def-123",
        staff_token="t0ps3cret",
        headers={"Authorization": "Bearer xyz", "accept": "json"},
        dsn="postgresql://crownstream:hunter2@db:5432/x",
    )
    text = orjson.dumps(entry).decode()
    for leaked in (secret, "abc.def-123", "t0ps3cret", "xyz", "hunter2"):
        assert leaked not in text, leaked
    assert entry["headers"]["accept"] == "json"
    assert "crownstream:***@" in entry["dsn"]


SECRETS_IN_TEXT = {
    "discord": "https://discord.com/api/webhooks/123456789012345678/AbC-dEf_gh1J2kL3mN4oP5qR6sT7uV8wX9yZ0",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJlX2xvb2tzX2xpa2VfdGhpcw",
    "unsubscribe": "/users/u-1/unsubscribe?type=all&key=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "bearer": "Authorization: Bearer s3cr3t-staff-token-value",
    "url password": "postgresql+asyncpg://crownstream:hunter2@db:5432/x",
    "webhook secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
LEAKS = [
    "AbC-dEf_gh1J2kL3mN4oP5qR6sT7uV8wX9yZ0",
    "c2lnbmF0dXJlX2xvb2tzX2xpa2VfdGhpcw",
    "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "s3cr3t-staff-token-value",
    "hunter2",
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
]


def _plain(msg: str) -> str:
    from crownstream.logs import TextFormatter

    try:
        raise RuntimeError(msg)
    except RuntimeError:
        import sys

        record = logging.LogRecord("crownstream.test", logging.ERROR, __file__, 1, msg, (), sys.exc_info())
    return TextFormatter().format(record)


def test_no_secret_reaches_either_formatter_nor_a_traceback():
    text = " | ".join(SECRETS_IN_TEXT.values())
    json_line = orjson.dumps(_format(text, url=SECRETS_IN_TEXT["discord"], request_path=SECRETS_IN_TEXT["unsubscribe"]))
    plain_line = _plain(text)
    for leaked in LEAKS:
        assert leaked.encode() not in json_line, leaked
        assert leaked not in plain_line, leaked
    # What the secret was stays readable, so the line still says something.
    assert "/api/webhooks/123456789012345678/***" in plain_line and "key=***" in plain_line
    assert "Traceback" in plain_line and "RuntimeError" in plain_line


def test_the_worker_logging_config_uses_the_masking_formatters():
    from crownstream.logs import logging_config

    assert logging_config("info", True)["formatters"]["default"]["()"] == "crownstream.logs.JsonFormatter"
    assert logging_config("info", False)["formatters"]["default"]["()"] == "crownstream.logs.TextFormatter"
