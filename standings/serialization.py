"""Plain data in and out of the standings' frozen dataclasses (what the tables store as JSON).

``to_plain`` is the one encoder: a dataclass becomes a dict of its fields in declaration order, enums their
value, nested dataclasses dicts, tuples lists, and a field declared with ``metadata=PAIRS`` (a tuple of
(key, value) pairs, e.g. a game score) a JSON object. The stored JSON is pinned by
tests/unit/standings/test_standings_encoding.py. Reading back stays with each type's ``from_dict``: what it accepts, and
the message when it refuses, is each type's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from enum import Enum
from functools import cache
from types import MappingProxyType
from typing import Any

#: Field metadata: the field holds (key, value) pairs and is stored as a JSON object.
PAIRS: Mapping[str, Any] = MappingProxyType({"stored_as": "object"})


@cache
def _layout(cls: type) -> tuple[tuple[str, bool], ...]:
    return tuple((f.name, f.metadata.get("stored_as") == "object") for f in fields(cls))


def to_plain(obj: Any) -> dict[str, Any]:
    """A dataclass instance as JSON-friendly values (see the module docstring)."""
    out = {}
    for name, as_object in _layout(type(obj)):
        value = getattr(obj, name)
        out[name] = dict(value) if as_object else _plain(value)
    return out


_SCALARS = frozenset({str, int, float, bool, type(None)})  # exact types: a StrEnum is a str, but stored as its value


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return to_plain(value)
    return value


def pick_fields(cls: type, data: Mapping[str, Any], optional: set[str] = frozenset()) -> dict[str, Any]:
    """The constructor arguments of dataclass ``cls`` from ``data``: every field is required unless named in
    ``optional`` (then None when absent); keys that are not fields are ignored."""
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in data and n not in optional]
    if missing:
        raise ValueError(f"{cls.__name__} is missing field(s) {missing} in {dict(data)!r}")
    return {n: data.get(n) for n in names}
