"""Decoding never crashes: any bytes and any JSON yield a valid event or a rejection with a reason."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from crownstream.schemas.codec import Rejection, decode
from crownstream.schemas.events import EVENT_MODELS, Envelope
from crownstream.schemas.examples import example

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


def _field_names() -> list[str]:
    """Every field name of every event model, nested models included (rules, placements, audiences …)."""
    names, todo, seen = set(), list(EVENT_MODELS.values()), set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            todo += [t for t in _models_in(info.annotation) if t not in seen]
    return sorted(names)


def _models_in(annotation) -> list:
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


# The keys the models use (schema_version, rules, point_table, …): random text keys almost never hit one.
model_keys = st.one_of(st.sampled_from(_field_names()), st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(EVENT_MODELS)), st.dictionaries(model_keys, json_values, max_size=4),
       st.lists(model_keys, max_size=3))
def test_mutated_valid_events(event_type, additions, removals):
    """Near-misses are the realistic bad input: a valid event with fields replaced, added or dropped.
    (tests/unit/test_agent_robustness_properties.py goes deeper, through the handlers.)"""
    body = example(event_type)
    body.update(additions)
    for key in removals:
        body.pop(key, None)
    _check(decode(orjson.dumps(body)))
