"""Bytes <-> events. Decoding never raises: it yields an event or a ``Rejection`` that says why.

The agents call ``decode`` on every record they read; a ``Rejection`` goes to the dead-letter topic with
its code and reason and processing goes on. Producers call ``validate`` before sending, so most bad input
is refused at the edge with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from crownstream.schemas.errors import InvalidEvent as InvalidEvent
from crownstream.schemas.events import EVENT_MODELS, SUPPORTED_VERSIONS, Envelope, Event

_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is not a valid event. ``code`` is stable (metrics, DLQ headers); ``reason`` is for people."""

    # oversize | empty | not_json | not_object | unknown_type | unsupported_version | invalid | decode_error
    # (here); wrong_topic | handler_error | rejected (the agents: agents/decoding.py, agents/series.py)
    code: str
    reason: str
    event_type: str | None = None
    event_id: str | None = None


def encode(event: Envelope) -> bytes:
    """The wire form of an event: compact JSON, UTC timestamps with offset."""
    return orjson.dumps(event.model_dump(mode="json"))


# A reason is for people and travels in a DLQ header and a log line: long enough to name every problem of a
# realistic record, short enough that a record with ten thousand bad fields cannot make it megabytes.
REASON_MAX_CHARS = 2000
_ERRORS_SHOWN = 10


def decode(raw: bytes | None, *, max_bytes: int = 512_000) -> Event | Rejection:
    """Never raises: whatever ``raw`` holds, an event or a ``Rejection``."""
    try:
        return _decode(raw, max_bytes)
    except Exception as exc:
        return Rejection("decode_error", cap_reason(f"record could not be decoded: {type(exc).__name__}: {exc}"))


def _decode(raw: bytes | None, max_bytes: int) -> Event | Rejection:
    if raw is None or len(raw) == 0:
        return Rejection("empty", "record has no value (tombstone or empty message); an event is a JSON object")
    if len(raw) > max_bytes:
        return Rejection(
            "oversize", f"record is {len(raw)} bytes; the limit is {max_bytes} (CROWNSTREAM_MAX_EVENT_BYTES)"
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"value is not valid JSON: {exc}")
    return _from_dict(data)


def from_dict(data: Any) -> Event | Rejection:
    """A dict -> an event or a ``Rejection``; never raises (see ``decode``)."""
    try:
        return _from_dict(data)
    except Exception as exc:
        return Rejection("decode_error", cap_reason(f"record could not be validated: {type(exc).__name__}: {exc}"))


def _from_dict(data: Any) -> Event | Rejection:
    if not isinstance(data, dict):
        return Rejection("not_object", f"an event is a JSON object, got {type(data).__name__}")
    event_type = data.get("type")
    # Only for logs and headers: a clipped printable form, whatever the record holds.
    event_id = repr(data["event_id"])[1:-1][:128] if isinstance(data.get("event_id"), str) else None
    if not isinstance(event_type, str) or event_type not in EVENT_MODELS:
        known = ", ".join(sorted(EVENT_MODELS))
        shown = repr(event_type) if not isinstance(event_type, (dict, list)) else type(event_type).__name__
        return Rejection(
            "unknown_type", cap_reason(f"unknown event type {shown[:80]}; known types: {known}"), None, event_id
        )
    version = data.get("schema_version", 1)
    supported = SUPPORTED_VERSIONS[event_type]
    if isinstance(version, bool) or not isinstance(version, int):
        # A list or an object is not hashable, true is not 1, and 1e30 is a float: all are wrong types.
        shown = repr(version) if not isinstance(version, (dict, list)) else type(version).__name__
        return Rejection(
            "invalid",
            cap_reason(
                f"{event_type} schema_version must be an integer (supported: {sorted(supported)}), got {shown[:80]}"
            ),
            event_type,
            event_id,
        )
    if version not in supported:
        return Rejection(
            "unsupported_version",
            f"{event_type} schema_version {version!r} is not supported by this worker "
            f"(supported: {sorted(supported)}); upgrade the workers before the producers",
            event_type,
            event_id,
        )
    try:
        return _event_adapter.validate_python(data)
    except ValidationError as exc:
        return Rejection("invalid", describe_errors(exc, event_type), event_type, event_id)


def describe_errors(exc: ValidationError, event_type: str) -> str:
    """One line per problem: field path, offending value, rule broken."""
    lines = []
    for err in exc.errors(include_url=False):
        # The discriminator adds the type name as the first path element; users know it already.
        loc = [str(p) for p in err["loc"] if p != event_type]
        field = ".".join(loc) or "(event)"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{…}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(
            f"{field}: {err['msg']} (got {shown})"
            if err["type"] != "missing"
            else f"{field}: required field is missing"
        )
    more = f"; and {len(lines) - _ERRORS_SHOWN} more problem(s)" if len(lines) > _ERRORS_SHOWN else ""
    return cap_reason(f"invalid {event_type}: " + "; ".join(lines[:_ERRORS_SHOWN]) + more)


def cap_reason(reason: str, limit: int = REASON_MAX_CHARS) -> str:
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def validate(data: dict[str, Any] | Envelope) -> Envelope:
    """Validate a dict (or pass an event through); raise ``InvalidEvent`` with the precise reason."""
    if isinstance(data, Envelope):
        return data
    result = from_dict(data)
    if isinstance(result, Rejection):
        raise InvalidEvent(result)
    return result
