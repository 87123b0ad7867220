"""Structured logs: one JSON object per line, with the record's ``extra`` fields (event ids, offsets…).

Secrets never reach the log: fields whose name says secret/token/password/authorization are masked, and so
are values that look like webhook secrets or bearer tokens, wherever they appear in the message.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_SECRET_NAME = re.compile(r"secret|token|password|passwd|authorization|api_key|apikey", re.I)
MASK = "***"
# Each pattern keeps its first group (what the secret is) and masks the rest.
_SECRET_VALUES = [
    re.compile(p)
    for p in (
        r"(whsec_)[A-Za-z0-9+/=]+",  # webhook signing secrets
        r"(Bearer\s+)[A-Za-z0-9._~+/=-]+",  # staff and user bearer tokens
        r"(://[^:/@\s]+:)[^@\s]+(?=@)",  # passwords in URLs (keep the user)
        r"(/api/webhooks/\d+/)[A-Za-z0-9._-]+",  # a Discord webhook URL's token is its credential
        r"()eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",  # JWTs (user tokens) without their scheme
        r"([?&](?:key|token|secret|signature|sig)=)[^&\s\"']+",  # signed links (one-click unsubscribe keys)
    )
]


def redact_text(text: str) -> str:
    for pattern in _SECRET_VALUES:
        text = pattern.sub(lambda match: match.group(1) + MASK, text)
    return text


def redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_NAME.search(key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """Plain log lines, masked as the JSON ones are (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def logging_config(level: str, as_json: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Faust's worker (Faust applies it at start-up)."""
    formatter = {"()": "crownstream.logs.JsonFormatter" if as_json else "crownstream.logs.TextFormatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {"aiokafka": {"level": "WARNING"}},
    }
