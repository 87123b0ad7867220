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
    entry = _format(f"endpoint secret {secret} with Bearer abc.def-123", staff_token="t0ps3cret",
                    headers={"Authorization": "Bearer xyz", "accept": "json"},
                    dsn="postgresql://crownstream:hunter2@db:5432/x")
    text = orjson.dumps(entry).decode()
    for leaked in (secret, "abc.def-123", "t0ps3cret", "xyz", "hunter2"):
        assert leaked not in text, leaked
    assert entry["headers"]["accept"] == "json"
    assert "crownstream:***@" in entry["dsn"]
