"""Small validators of the standings' inputs (series, groups, rule sets): each returns the value it checked
or raises ValueError naming the field. Used as ``check.text(...)`` after ``from crownstream.standings import
validators as check``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any


def text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def integer(value: Any, what: str, minimum: int | None = None) -> int:
    # bool is an int subclass; True as a game number is a bug upstream, not a 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return value


def utc(value: Any, what: str) -> str:
    """ISO-8601 with a timezone, normalised to UTC so that timestamps compare correctly as text."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be an ISO-8601 timestamp string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} is not an ISO-8601 timestamp: {value!r} (e.g. 2026-11-24T18:00:00Z)") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what} needs a timezone (e.g. a trailing Z for UTC), got {value!r}")
    return parsed.astimezone(UTC).isoformat()


def mapping(data: Any, what: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a mapping (a JSON object), got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} in {what}; allowed: {sorted(allowed)}")
    return data


def required(data: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise ValueError(f"{what} is missing {key!r}")
    return data[key]
