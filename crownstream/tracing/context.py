"""W3C trace context (``traceparent``) with ids derived from what is being traced, never drawn at random.

A replayed record must carry the same trace as the first time (the kill -9 tests compare outputs byte for byte,
and a trace read back from the topics must not fork), so:
  - an event sent without a caller's trace starts one whose trace id and span id are hashes of its event id;
  - the span of a record's processing is a hash of the parent span it arrived with and the record's place (topic,
    partition, key) — not its offset, which changes when a backend resends the same event;
  - outputs carry that span as their parent.
Anyone holding a record can therefore recompute the span its consumer ran under, which is how ``crownstream trace``
links each hop to the next without a tracing backend. Pure: no Kafka, no OpenTelemetry.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

HEADER = "traceparent"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_SEP = b"\x1f"


def _digest(*parts: str | bytes) -> bytes:
    return hashlib.sha256(_SEP.join([part if isinstance(part, bytes) else part.encode() for part in parts])).digest()


def _nonzero(hex_id: str) -> str:
    # All-zero ids are invalid in W3C trace context; a hash gives one with probability 2^-64 at worst.
    return hex_id if hex_id.strip("0") else hex_id[:-1] + "1"


class TraceContext(NamedTuple):
    """Immutable (a NamedTuple: built for every processed record, it must be cheap to make)."""

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits: the span this context's holder runs under (its children's parent)
    sampled: bool = True

    @property
    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @property
    def header_bytes(self) -> bytes:
        return self.header.encode()

    def child(self, *place: str | bytes) -> TraceContext:
        """The span of work done at ``place`` on behalf of this one: same trace, a span id derived from both."""
        return TraceContext(self.trace_id, _nonzero(_digest(self.span_id, *place)[:8].hex()), self.sampled)


def parse(value: str | bytes | None) -> TraceContext | None:
    """A ``traceparent`` header -> its context; None when absent or invalid (W3C: an invalid header is ignored and
    a new trace starts, it never fails the request)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    cached = _parsed.get(value)
    if cached is not None:
        return cached
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    ctx = TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    _parsed[value] = ctx
    return ctx


# Records of one fan-out share their parent's header: each is parsed once (contexts are immutable).
_parsed: dict[str, TraceContext] = {}
_PARSED_MAX = 4096


def for_event(event_id: str) -> TraceContext:
    """The trace an event starts when its producer gives none: derived from its id, so a resent or replayed event
    is the same trace."""
    digest = _digest("crownstream.trace", event_id)
    return TraceContext(_nonzero(digest[:16].hex()), _nonzero(digest[16:24].hex()))


def trace_id_for_event(event_id: str) -> str:
    return for_event(event_id).trace_id


def processing(
    parent: TraceContext, topic: str, partition: int, key: bytes | None, event_id: str | None = None
) -> TraceContext:
    """The span under which a record of ``topic``/``partition`` with ``key`` (and ``event_id``, for an event: one
    input can write several events of one key, e.g. a result's ranking changes) was processed, given the context
    it arrived with. Its outputs carry it as their parent."""
    # The material built directly, not through child(): this runs for every record processed.
    material = _SEP.join(
        (parent.span_id.encode(), b"process", topic.encode(), b"%d" % partition, key or b"", (event_id or "").encode())
    )
    return TraceContext(parent.trace_id, _nonzero(hashlib.sha256(material).digest()[:8].hex()), parent.sampled)


def delivery(parent: TraceContext, dedup_key: str, target: str) -> TraceContext:
    """The span of a sink's attempt to deliver one request (``target``: the webhook endpoint, or empty)."""
    return parent.child("deliver", dedup_key, target)
