"""W3C trace context with derived ids: parsing as the spec says, and ids that a replay reproduces."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crownstream.tracing import propagation
from crownstream.tracing.context import TraceContext, delivery, for_event, parse, processing

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_header_parses_and_formats_back():
    ctx = parse(VALID)
    assert ctx == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)
    assert ctx.header == VALID
    assert parse(VALID.encode()) == ctx
    assert parse(VALID[:-2] + "00").sampled is False


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        VALID.upper(),  # the spec's ids are lowercase hex
        "ff" + VALID[2:],  # version ff is invalid
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        VALID + "-extra",  # version 00 has exactly four fields
        b"\xff\xfe",
    ],
)
def test_an_invalid_header_is_ignored(header):
    assert parse(header) is None


def test_a_future_version_is_read_for_its_first_four_fields():
    assert parse("01" + VALID[2:] + "-what-comes-next") == parse(VALID)


def test_an_event_without_a_caller_trace_gets_one_derived_from_its_id():
    assert for_event("evt-1") == for_event("evt-1")
    assert for_event("evt-1").trace_id != for_event("evt-2").trace_id
    assert parse(for_event("evt-1").header) == for_event("evt-1")


@given(st.text(min_size=1, max_size=50), st.integers(0, 63), st.binary(max_size=20))
def test_derived_spans_are_valid_stable_and_keep_the_trace(event_id, partition, key):
    root = for_event(event_id)
    span = processing(root, "topic", partition, key)
    assert span == processing(root, "topic", partition, key)  # a replay: the same span
    assert span.trace_id == root.trace_id and span.span_id != root.span_id
    assert parse(span.header) == span
    assert delivery(span, "k" * 64, "") != delivery(span, "k" * 64, "endpoint-1")


def test_spans_differ_by_place_and_by_event():
    root = for_event("evt")
    spans = {
        processing(root, "a", 0, b"k"),
        processing(root, "b", 0, b"k"),
        processing(root, "a", 1, b"k"),
        processing(root, "a", 0, b"j"),
        processing(root, "a", 0, b"k", "rank-1"),
        processing(root, "a", 0, b"k", "rank-2"),
        processing(for_event("other"), "a", 0, b"k"),
    }
    assert len({s.span_id for s in spans}) == 7


def message(headers=(), topic="t", partition=0, key=b"k", offset=5):
    return SimpleNamespace(topic=topic, partition=partition, key=key, offset=offset, headers=list(headers))


def test_outputs_carry_the_span_of_the_record_being_processed():
    assert propagation.outgoing_headers() == []
    arrived = for_event("evt").child("send")
    with propagation.processing_span(message([("traceparent", arrived.header.encode())]), "agent") as ctx:
        assert ctx == processing(arrived, "t", 0, b"k")
        assert propagation.outgoing_headers() == [("traceparent", ctx.header.encode())]
    assert propagation.outgoing_headers() == []


def test_a_record_without_a_header_continues_the_trace_its_event_derives():
    with propagation.processing_span(message(), "agent", event_id="evt") as ctx:
        assert ctx == processing(for_event("evt"), "t", 0, b"k", "evt")
    with propagation.processing_span(message(), "agent") as ctx:  # an internal record written untraced
        assert ctx is None and propagation.outgoing_headers() == []


def test_headers_are_read_from_pairs_or_a_mapping():
    assert propagation.header_value([("a", b"1"), ("traceparent", b"x")]) == b"x"
    assert propagation.header_value({"traceparent": b"y"}) == b"y"
    assert propagation.header_value(None) is None
