"""Trace context through the agents: the context a record arrived with, the span its processing runs under, and
the ``traceparent`` header every output of that processing carries.

``processing_span`` wraps one record's handling (agents/decoding.py does it for every agent). While it runs,
``outgoing_headers()`` gives the header for its outputs — read from a context variable, so the send paths
(``notifications_common.send_records``, the standings agent's ``emit_encoded``) need no extra argument and a
record's outputs in every topic share its span. A record without a ``traceparent`` (a producer that sets none)
starts the trace its event id derives (``context.for_event``); an internal record without one (written before
trace headers existed) is processed untraced. When OTLP export is on (``otel``), each processing is also a span.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from crownstream.tracing import otel
from crownstream.tracing.context import HEADER, TraceContext, for_event, parse, processing

_current: ContextVar[TraceContext | None] = ContextVar("crownstream_trace_context", default=None)


def header_value(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None, name: str = HEADER) -> bytes | None:
    """A header of a record (Faust gives a list of pairs or a dict, aiokafka a tuple of pairs): ``traceparent``
    unless another ``name`` is asked for."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = (name, name.encode())
    for key, value in items:
        if key in wanted:
            return value
    return None


def incoming(headers: Any) -> TraceContext | None:
    return parse(header_value(headers))


def current() -> TraceContext | None:
    """The span of the record being processed, if it is traced."""
    return _current.get()


def outgoing_headers() -> list[tuple[str, bytes]]:
    """Headers for the outputs of the record being processed: its span as their parent (none if untraced)."""
    ctx = _current.get()
    return [] if ctx is None else [(HEADER, ctx.header_bytes)]


class processing_span:
    """Run one record's handling under its span. ``message``: Faust's (topic, partition, offset, key, headers);
    ``event_id``: the decoded event's, which derives a trace for a record that came without one. Yields the span's
    context (None: untraced). A class, not a generator: it runs for every record processed."""

    __slots__ = ("_ctx", "_span", "_token")

    def __init__(self, message: Any, agent: str, event_id: str | None = None, event_type: str | None = None) -> None:
        self._ctx: TraceContext | None = None
        self._span: Any = None
        self._token: Any = None
        parent = incoming(message.headers)
        if parent is None and event_id is not None:
            parent = for_event(event_id)
        if parent is None:
            return
        self._ctx = processing(parent, message.topic, message.partition, message.key, event_id)
        if otel.enabled():
            self._span = otel.consumer_span(self._ctx, parent, message, agent, event_id, event_type)

    def __enter__(self) -> TraceContext | None:
        if self._ctx is not None:
            self._token = _current.set(self._ctx)
            if self._span is not None:
                self._span.__enter__()
        return self._ctx

    def __exit__(self, *exc_info: Any) -> None:
        if self._ctx is not None:
            _current.reset(self._token)
            if self._span is not None:
                self._span.__exit__(*exc_info)
