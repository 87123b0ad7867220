"""A delivery attempt's place in its source event's trace: the span an attempt runs under (derived from the
request's stored ``traceparent``, its dedup key and target, so every attempt of one delivery is the same span and
a receiver sees the same ``traceparent`` on a retry) and, when OTLP export is on, the span itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from crownstream.sinks.ledger import Claimed
from crownstream.tracing import otel
from crownstream.tracing.context import TraceContext, delivery, parse

Trace = tuple[TraceContext, TraceContext]  # (the attempt's span, the fan-out span it continues)


def delivery_trace(claimed: Claimed) -> Trace | None:
    parent = parse(claimed.request.traceparent)
    if parent is None:
        return None
    return delivery(parent, claimed.dedup_key, claimed.target), parent


@contextmanager
def traced_delivery(trace: Trace | None, claimed: Claimed, url: str | None = None) -> Iterator[Any]:
    if trace is None:
        yield None
        return
    host = urlsplit(url).hostname if url else None
    with otel.delivery_span(trace[0], trace[1], claimed.request.channel, claimed.dedup_key, claimed.target, host) as s:
        yield s
