"""Structured logs: one JSON object per line, with the record's ``extra`` fields (event ids, offsets…).

Secrets never reach the log: fields whose name says secret/token/password/authorization are masked, and so
are values that look like webhook secrets or bearer tokens, wherever they appear in the message.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_SECRET_NAME = re.compile(r"secret|token|password|passwd|authorization|api_key|apikey", re.I)
_SECRET_VALUE = re.compile(r"(whsec_[A-Za-z0-9+/=]+|Bearer\s+[A-Za-z0-9._~+/=-]+|://[^:/@\s]+:[^@\s]+@)")
MASK = "***"


def redact_text(text: str) -> str:
    def mask(match: re.Match) -> str:
        value = match.group(0)
        if value.startswith("://"):
            return "://" + value[3:].split(":", 1)[0] + ":" + MASK + "@"  # keep the user, hide the password
        return value.split("_", 1)[0] + "_" + MASK if value.startswith("whsec_") else "Bearer " + MASK
    return _SECRET_VALUE.sub(mask, text)


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
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
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


def logging_config(level: str, as_json: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Faust's worker (Faust applies it at start-up)."""
    formatter = {"()": "crownstream.logs.JsonFormatter"} if as_json else {
        "format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {"aiokafka": {"level": "WARNING"}},
    }
