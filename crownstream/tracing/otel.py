"""OpenTelemetry spans of Crownstream's hops, exported over OTLP/HTTP when ``CROWNSTREAM_OTLP_ENDPOINT`` is set.

Off by default: nothing is imported from the SDK and every span helper is a no-op. When on, a span's ids are the
ones the trace headers already carry (``context``): the SDK's id generator hands out the id derived for the span
being started, so what a collector shows and what ``crownstream trace`` reads from the topics agree, and a replay
reports to the same spans. The sampler is the SDK's (``OTEL_TRACES_SAMPLER`` and friends); other exporter options
come from the standard ``OTEL_EXPORTER_OTLP_*`` variables.

opentelemetry-instrumentation-aiokafka is not used: it wraps ``AIOKafkaProducer.send`` and the consumer's
``getone``/``getmany``, while Faust's consumer runs in a thread of its own and the engine appends outputs to the
producer's record batches directly (crownstream/engine/transactions.py), so it would see neither side of a hop.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

from crownstream.tracing.context import TraceContext

_tracer: Any = None
_provider: Any = None
# The (trace id, span id) the id generator hands out next, set around start_span.
_forced: ContextVar[tuple[str, str] | None] = ContextVar("crownstream_forced_span_ids", default=None)


def enabled() -> bool:
    return _tracer is not None


def configure(
    endpoint: str | None, service_name: str = "crownstream", instance: str | None = None, exporter: Any = None
) -> bool:
    """Start exporting spans to ``endpoint`` (an OTLP/HTTP base URL); False (and nothing done) if it is unset.
    ``exporter``: a span exporter of one's own instead (spans handed over as they end; the tests' in-memory one)."""
    global _tracer, _provider
    if not endpoint and exporter is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class DerivedIds(IdGenerator):
        def generate_span_id(self) -> int:
            forced = _forced.get()
            return int(forced[1], 16) if forced else random.getrandbits(64) or 1

        def generate_trace_id(self) -> int:
            forced = _forced.get()
            return int(forced[0], 16) if forced else random.getrandbits(128) or 1

    attributes = {"service.name": service_name}
    if instance:
        attributes["service.instance.id"] = instance
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=DerivedIds())
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        assert endpoint is not None
        traces_url = endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
    _provider, _tracer = provider, provider.get_tracer("crownstream")
    return True


def shutdown() -> None:
    """Export what is pending and stop (a stopping worker calls it; the SDK also does at interpreter exit)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def _start(name: str, ctx: TraceContext, parent: TraceContext | None, kind_name: str, attributes: dict[str, Any]):
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    parent_context = None
    if parent is not None:
        remote = SpanContext(
            int(parent.trace_id, 16),
            int(parent.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else TraceFlags.DEFAULT),
        )
        parent_context = trace.set_span_in_context(NonRecordingSpan(remote))
    token = _forced.set((ctx.trace_id, ctx.span_id))
    try:
        return _tracer.start_span(
            name, context=parent_context, kind=getattr(SpanKind, kind_name), attributes=attributes
        )
    finally:
        _forced.reset(token)


@contextmanager
def _span(
    name: str, ctx: TraceContext, parent: TraceContext | None, kind: str, attributes: dict[str, Any]
) -> Iterator[Any]:
    """The span, recorded (its failure too) — or, with export off, nothing: yields None."""
    if _tracer is None:
        yield None
        return
    span = _start(name, ctx, parent, kind, {k: v for k, v in attributes.items() if v is not None})
    try:
        yield span
    except BaseException as exc:
        span.record_exception(exc)
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        span.end()


def _messaging(operation: str, topic: str, event_id: str | None, event_type: str | None) -> dict[str, Any]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.destination.name": topic,
        "crownstream.event_id": event_id,
        "crownstream.event_type": event_type,
    }


def consumer_span(
    ctx: TraceContext, parent: TraceContext, message: Any, agent: str, event_id: str | None, event_type: str | None
) -> AbstractContextManager[Any]:
    """One record's processing by an agent (a CONSUMER span, child of the span that produced the record)."""
    if _tracer is None:
        return nullcontext()  # per record: not even the attributes when export is off
    attributes = {
        **_messaging("process", message.topic, event_id, event_type),
        "messaging.destination.partition.id": str(message.partition),
        "messaging.kafka.offset": message.offset,
        "messaging.consumer.group.name": agent,
    }
    return _span(f"process {message.topic}", ctx, parent, "CONSUMER", attributes)


def send_span(
    ctx: TraceContext, topic: str, event_id: str, event_type: str, parent: TraceContext | None = None
) -> AbstractContextManager[Any]:
    """The producer API sending one event (a PRODUCER span: the root of its trace, or a child of the caller's)."""
    return _span(f"send {topic}", ctx, parent, "PRODUCER", _messaging("send", topic, event_id, event_type))


def delivery_span(
    ctx: TraceContext, parent: TraceContext, channel: str, dedup_key: str, target: str, host: str | None
) -> AbstractContextManager[Any]:
    """A sink's attempt to deliver one request (a CLIENT span). ``host`` only: a URL can hold a credential
    (a Discord webhook's token)."""
    attributes = {
        "crownstream.channel": channel,
        "crownstream.dedup_key": dedup_key,
        "crownstream.target": target or None,
        "server.address": host,
    }
    return _span(f"deliver {channel}", ctx, parent, "CLIENT", attributes)
