"""Spans exported when OTLP is configured carry the ids the trace headers carry: what a collector shows and what
``crownstream trace`` reads from the topics agree, and a replay reports the same spans."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from crownstream.tracing import otel, propagation
from crownstream.tracing.context import delivery, for_event, processing


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    assert otel.configure(None, "test", exporter=exporter)
    yield exporter
    otel.shutdown()


def test_off_by_default():
    assert not otel.configure(None)
    assert not otel.enabled()
    with otel.consumer_span(for_event("e"), for_event("e"), None, "agent", None, None):
        pass  # a no-op: nothing imported, nothing recorded


def test_a_processed_record_is_a_consumer_span_with_the_derived_ids(spans):
    root = for_event("evt-1")
    message = SimpleNamespace(topic="tournament-events", partition=3, key=b"t1", offset=42, headers=[])
    with propagation.processing_span(message, "tournament-events", "evt-1", "match.completed") as ctx:
        pass
    (span,) = spans.get_finished_spans()
    assert ctx == processing(root, "tournament-events", 3, b"t1", "evt-1")
    assert format(span.context.trace_id, "032x") == root.trace_id
    assert format(span.context.span_id, "016x") == ctx.span_id
    assert format(span.parent.span_id, "016x") == root.span_id and span.parent.is_remote
    assert span.kind == SpanKind.CONSUMER
    assert span.attributes["messaging.kafka.offset"] == 42
    assert span.attributes["crownstream.event_type"] == "match.completed"


def test_a_failure_is_recorded_on_the_span(spans):
    message = SimpleNamespace(topic="t", partition=0, key=None, offset=1, headers=[])
    with pytest.raises(RuntimeError), propagation.processing_span(message, "agent", "evt-2"):
        raise RuntimeError("broker gone")
    (span,) = spans.get_finished_spans()
    assert not span.status.is_ok and span.events[0].name == "exception"


def test_a_delivery_attempt_is_a_client_span_without_the_url(spans):
    parent = for_event("evt-3").child("fan-out")
    attempt = delivery(parent, "d" * 64, "endpoint-1")
    with otel.delivery_span(attempt, parent, "webhook", "d" * 64, "endpoint-1", "hooks.example.org") as span:
        span.set_attribute("http.response.status_code", 204)
    (exported,) = spans.get_finished_spans()
    assert format(exported.context.span_id, "016x") == attempt.span_id
    assert exported.kind == SpanKind.CLIENT
    assert exported.attributes["server.address"] == "hooks.example.org"
    assert not any("url" in name for name in exported.attributes)
