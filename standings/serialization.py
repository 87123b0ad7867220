"""Plain data in and out of the standings' frozen dataclasses (what the tables store as JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any


def field_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance's fields, in declaration order, values as they are (not recursed into)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def pick_fields(cls: type, data: Mapping[str, Any], optional: set[str] = frozenset()) -> dict[str, Any]:
    """The constructor arguments of dataclass ``cls`` from ``data``: every field is required unless named in
    ``optional`` (then None when absent); keys that are not fields are ignored."""
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in data and n not in optional]
    if missing:
        raise ValueError(f"{cls.__name__} is missing field(s) {missing} in {dict(data)!r}")
    return {n: data.get(n) for n in names}
