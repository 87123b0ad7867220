"""Plain data in and out of frozen dataclasses (what the tables store as JSON): ``to_plain`` and ``from_plain``.

``to_plain``: a dataclass becomes a dict of its fields in declaration order, enums their value, nested
dataclasses dicts, tuples lists, datetimes ISO-8601 text, and a field declared with ``metadata=PAIRS`` (a tuple
of (key, value) pairs, e.g. a game score) a JSON object. A field may be stored under another key
(``metadata=stored_as("type")``), for formats that were compact before this helper. The stored JSON is pinned by
tests/unit/standings/test_standings_encoding.py.

``from_plain``: the counterpart, driven by the fields and their type hints: nested dataclasses, tuples (of
anything), enums, optional values and datetimes are rebuilt; scalars are passed as they are, and the class's
``__post_init__`` validates them (with its own messages). A key that is absent takes the field's default; one
without a default is an error, unless the caller names it ``optional`` (then None). ``closed=True`` refuses keys
that are not fields. A value of the wrong shape raises ``PlainDataError`` (a ValueError) naming the field.

Both compile one function per class on first use (type hints read once, code generated as attrs and cattrs do),
so a record costs one dict display or one constructor call, not a loop over its fields.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from crownstream.standings.errors import PlainDataError as PlainDataError

T = TypeVar("T")

#: Field metadata: the field holds (key, value) pairs and is stored as a JSON object.
PAIRS: Mapping[str, Any] = types.MappingProxyType({"stored_as": "object"})
#: Field metadata: the field holds JSON-friendly data already, stored and read back as it is.
AS_IS: Mapping[str, Any] = types.MappingProxyType({"stored_as": "as_is"})
#: Field metadata: a field added to a stored type, written only when it differs from its default, so that every
#: value without it keeps the exact bytes the tables already hold (and reads back with the default).
OMIT_DEFAULT: Mapping[str, Any] = types.MappingProxyType({"omit_default": True})


def stored_as(key: str, **metadata: Any) -> Mapping[str, Any]:
    """Field metadata: the field is stored under ``key`` instead of its name (a format older than its fields)."""
    return types.MappingProxyType({**metadata, "key": key})


# --- encoding ---------------------------------------------------------------------------------------------------

_SCALARS = frozenset({str, int, float, bool, type(None)})  # exact types: a StrEnum is a str, but stored as its value


def to_plain(obj: Any) -> dict[str, Any]:
    """A dataclass instance as JSON-friendly values (see the module docstring)."""
    cls = type(obj)
    encode = _ENCODERS.get(cls)
    if encode is None:
        encode = _ENCODERS[cls] = _encoder(cls)
    return encode(obj)


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return to_plain(value)
    return value


def _scalar(hint: Any) -> bool:
    """A field declared str, int, float, bool or None (or a union of them) is stored as it is."""
    if get_origin(hint) in (Union, types.UnionType):
        return all(_scalar(a) for a in get_args(hint))
    return hint in _SCALARS


def _hints(cls: type) -> dict[str, Any]:
    try:
        return get_type_hints(cls)
    except NameError:  # an annotation only a type checker can resolve: every field then takes the general path
        return {}


Encode = Callable[[Any], dict[str, Any]]
_ENCODERS: dict[type, Encode] = {}  # compiled on first use (a dict, as functools.cache, but typed by class)


def _encoder(cls: type) -> Encode:
    """``to_plain`` for one class, compiled once: one dict display of its fields, each stored the cheapest way
    its declaration allows (as it is, through ``_plain``, or as an object)."""
    hints = _hints(cls)
    items = []
    optional_items = []
    for f in fields(cls):
        stored = f.metadata.get("stored_as")
        attribute = f"obj.{f.name}"
        if stored == "object":
            value = f"dict({attribute})"
        elif stored == "as_is" or (f.name in hints and _scalar(hints[f.name])):
            value = attribute
        elif hints.get(f.name) is datetime:
            value = f"{attribute}.isoformat()"
        else:
            value = f"_plain({attribute})"
        if f.metadata.get("omit_default"):
            if f.default is MISSING:
                raise TypeError(f"{cls.__qualname__}.{f.name}: OMIT_DEFAULT needs a default")
            optional_items.append((f.metadata.get("key", f.name), attribute, value, f"_default_{f.name}"))
            continue
        items.append(f"{f.metadata.get('key', f.name)!r}: {value}")
    if not optional_items:
        source = f"def encode(obj):\n    return {{{', '.join(items)}}}\n"
    else:
        lines = [f"def encode(obj):\n    out = {{{', '.join(items)}}}\n"]
        for key, attribute, value, default in optional_items:
            lines.append(f"    if {attribute} != {default}:\n        out[{key!r}] = {value}\n")
        source = "".join(lines) + "    return out\n"
    defaults = {f"_default_{f.name}": f.default for f in fields(cls) if f.metadata.get("omit_default")}
    encode: Encode = _compiled(source, "encode", cls, {"_plain": _plain, **defaults})
    return encode


def _compiled(source: str, name: str, cls: type, namespace: dict[str, Any]) -> Any:
    # Generated per class, as attrs and cattrs do: a field loop costs more than the record's own fields.
    scope = dict(namespace)
    exec(compile(source, f"<{name} of {cls.__qualname__}>", "exec"), scope)
    return scope[name]


# --- decoding ---------------------------------------------------------------------------------------------------

#: Rebuilds one field's value from its plain form; the second argument names the field in messages.
Convert = Callable[[Any, str], Any]
Decode = Callable[[Any, str], Any]


def from_plain(
    cls: type[T], data: Any, *, what: str | None = None, closed: bool = False, optional: Collection[str] = ()
) -> T:
    """An instance of dataclass ``cls`` from its plain form (see the module docstring). ``what`` names it in
    messages ("a game result"); ``closed`` refuses keys that are not fields; ``optional`` names fields without a
    default that may be absent (then None)."""
    # Per record: one dict lookup by a cheap key (no frozenset built when nothing is optional, the usual case).
    plan: tuple[type, bool] | tuple[type, bool, frozenset[str]] = (
        (cls, closed) if not optional else (cls, closed, frozenset(optional))
    )
    decode = _DECODERS.get(plan)
    if decode is None:
        decode = _DECODERS[plan] = _decoder(cls, closed, frozenset(optional))
    instance: T = decode(data, what or f"a {cls.__name__}")
    return instance


#: Compiled on first use, per class and options: (class, closed) or (class, closed, optional fields).
_DECODERS: dict[tuple[type, bool] | tuple[type, bool, frozenset[str]], Decode] = {}


def _decoder(cls: type, closed: bool, optional: frozenset[str]) -> Decode:
    """``from_plain`` for one class and set of options, compiled once: the mapping check, the required values
    looked up in field order (a missing one is reported before any value is converted), then one constructor
    call with every field in order, converted where its type says so."""
    hints = get_type_hints(cls)
    namespace: dict[str, Any] = {"cls": cls, "Mapping": Mapping, "PlainDataError": PlainDataError, "missing": _missing}
    keys, required, lookups, arguments = [], [], [], []
    for i, f in enumerate(fields(cls)):
        key = f.metadata.get("key", f.name)
        keys.append(key)
        if not f.init:
            continue  # set by the class itself
        # PAIRS: the class takes the stored mapping and converts it itself (__post_init__); AS_IS: as it is.
        convert = None if f.metadata.get("stored_as") else _converter(hints[f.name])
        namespace[f"convert_{i}"] = convert
        if f.default is MISSING and f.default_factory is MISSING and f.name not in optional:
            required.append(key)
            lookups.append(f"        v{i} = data[{key!r}]")
            value = f"v{i}" if convert is None else f"convert_{i}(v{i}, {key!r})"
        else:
            namespace[f"default_{i}"] = None if f.default is MISSING else f.default
            namespace[f"factory_{i}"] = f.default_factory
            absent = f"factory_{i}()" if f.default_factory is not MISSING else f"default_{i}"
            if convert is None and f.default_factory is MISSING:
                value = f"data.get({key!r}, {absent})"
            else:
                got = f"data[{key!r}]" if convert is None else f"convert_{i}(data[{key!r}], {key!r})"
                value = f"{got} if {key!r} in data else {absent}"
        arguments.append(value)  # positional, in field order: as the dataclass __init__ takes them
    namespace["KEYS"] = frozenset(keys)
    namespace["REQUIRED"] = tuple(required)
    lines = [
        "def decode(data, what):",
        "    if type(data) is not dict and not isinstance(data, Mapping):",
        "        raise PlainDataError(f'{what} must be a mapping (a JSON object), got {type(data).__name__}')",
    ]
    if closed:
        lines += [
            "    if not KEYS.issuperset(data):",
            "        unknown = sorted(set(data) - KEYS)",
            "        raise PlainDataError(f'unknown field(s) {unknown} in {what}; allowed: {sorted(KEYS)}')",
        ]
    if required:
        lines += [
            "    try:",
            *lookups,
            "    except KeyError:",
            "        missing(data, what, REQUIRED)",
            "        raise",
        ]
    lines.append(f"    return cls({', '.join(arguments)})")
    decode: Decode = _compiled("\n".join(lines) + "\n", "decode", cls, namespace)
    return decode


def _missing(data: Mapping[str, Any], what: str, required: tuple[str, ...]) -> None:
    """Raise for the first required key ``data`` lacks (the KeyError may have come from elsewhere: then none)."""
    for key in required:
        if key not in data:
            raise PlainDataError(f"{what} is missing {key!r}")


def _converter(hint: Any) -> Convert | None:
    """How to rebuild a value of type ``hint`` from its plain form; None when the plain value is the value."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        inner = _converter(members[0]) if len(members) == 1 else None
        if inner is None:
            return None  # scalars, or a union of several types: validated by the class itself
        return lambda value, where: None if value is None else inner(value, where)
    if origin is tuple:
        item = _converter(args[0]) if len(args) == 2 and args[1] is Ellipsis else None
        return _tuple_of(item)
    if isinstance(hint, type) and is_dataclass(hint):
        if (hint, False) not in _DECODERS:
            _DECODERS[hint, False] = _decoder(hint, False, frozenset())
        return _DECODERS[hint, False]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum(hint)
    if hint is datetime:
        return _datetime
    return None


def _tuple_of(item: Convert | None) -> Convert:
    def convert(value: Any, where: str) -> tuple[Any, ...]:
        if type(value) is not list and not isinstance(value, tuple):
            raise PlainDataError(f"{where} must be a list, got {type(value).__name__}")
        if item is None:
            return tuple(value)
        each = f"an item of {where}"
        return tuple([item(v, each) for v in value])

    return convert


def _enum(cls: type[Enum]) -> Convert:
    def convert(value: Any, where: str) -> Enum:
        try:
            return cls(value)
        except ValueError:
            raise PlainDataError(f"{where} must be one of {[e.value for e in cls]}, got {value!r}") from None

    return convert


def _datetime(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise PlainDataError(f"{where} must be an ISO-8601 time string, got {type(value).__name__}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise PlainDataError(f"{where} is not an ISO-8601 time: {value!r}") from None
