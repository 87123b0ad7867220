"""Decoding never crashes: any bytes and any JSON yield a valid event or a rejection with a reason."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from crownstream.schemas.codec import Rejection, decode
from crownstream.schemas.events import EVENT_MODELS, Envelope
from crownstream.schemas.examples import example
from tests.support.models import event_field_names

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


def _check(result):
    assert isinstance(result, (Envelope, Rejection))
    if isinstance(result, Rejection):
        assert result.code and result.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(raw):
    _check(decode(raw))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json(value):
    _check(decode(orjson.dumps(value)))


# The keys the models use (schema_version, rules, point_table, …): random text keys almost never hit one.
model_keys = st.one_of(st.sampled_from(event_field_names()), st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(EVENT_MODELS)),
    st.dictionaries(model_keys, json_values, max_size=4),
    st.lists(model_keys, max_size=3),
)
def test_mutated_valid_events(event_type, additions, removals):
    """Near-misses are the realistic bad input: a valid event with fields replaced, added or dropped.
    (tests/unit/agents/test_agent_robustness_properties.py goes deeper, through the handlers.)"""
    body = example(event_type)
    body.update(additions)
    for key in removals:
        body.pop(key, None)
    _check(decode(orjson.dumps(body)))
