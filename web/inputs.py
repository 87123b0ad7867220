"""Reading what a client sends: JSON bodies, integers, id lists and path parameters — every malformation a 4xx
(``HttpError``) that says what was wrong, never an exception that becomes a 500.

Limits come from settings (``http_max_body_bytes``, ``http_max_json_depth``, ``http_max_ids``). Integers are
bounded to int64 because PostgreSQL (bigint) and the event encoder are; booleans are not integers here even
though Python says ``isinstance(True, int)``.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from crownstream.schemas.common import control_character
from crownstream.settings import Settings, get_settings
from crownstream.web.errors import HttpError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Longest path parameter (user, tournament, team … ids): the event models' ``Id`` is at most 128 characters,
#: so a longer one can name nothing that exists.
MAX_PATH_PARAM = 128
_DECIMAL = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: int() would also take "１２" and "1_000"


def bad_character(text: str) -> str | None:
    """The first control character, lone surrogate or line/paragraph separator of ``text``, as U+XXXX (None: clean).
    NUL is refused by PostgreSQL, the others break logs, headers and the pages' scripts."""
    # The event contract's control characters (schemas/common.py), plus what only a page's script or JSON cares about.
    for ch in text:
        if control_character(ch) is not None or unicodedata.category(ch) == "Cs" or ch in "\u2028\u2029":
            return f"U+{ord(ch):04X}"
    return None


def check_path_params(params: Mapping[str, str]) -> None:
    """Every path parameter of every route: 1-128 characters, no control characters (NUL included)."""
    for name, value in params.items():
        if len(value) > MAX_PATH_PARAM:
            raise HttpError(400, f"path parameter {name} is {len(value)} characters long; at most {MAX_PATH_PARAM}")
        if not value:
            raise HttpError(400, f"path parameter {name} is empty")
        if (bad := bad_character(value)) is not None:
            raise HttpError(400, f"path parameter {name} contains the control character {bad}; ids are printable")


def parse_int(raw: str, name: str, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    """A query-string integer: ASCII digits with an optional minus, within [minimum, maximum]."""
    if not _DECIMAL.fullmatch(raw):
        raise HttpError(400, f"{name} must be a whole number between {minimum} and {maximum}; got {raw[:40]!r}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise HttpError(400, f"{name} must be between {minimum} and {maximum}; got {value}")
    return value


def query_int(
    request: web.Request, name: str, default: int | None, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, name, minimum, maximum)


def json_int(value: Any, name: str, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    """An integer of a JSON body: not a boolean, not a float, within [minimum, maximum]."""
    if type(value) is not int:
        raise HttpError(400, f"{name} must be an integer, not {type(value).__name__} ({str(value)[:40]})")
    if not minimum <= value <= maximum:
        raise HttpError(400, f"{name} must be between {minimum} and {maximum}")
    return value


def id_list(value: Any, name: str, settings: Settings | None = None) -> list[int]:
    """A list of positive int64 ids, at most ``http_max_ids`` of them (PostgreSQL's driver takes at most
    32,767 parameters in one statement: a longer list crashed the query)."""
    limit = (settings or get_settings()).http_max_ids
    if not isinstance(value, list):
        raise HttpError(400, f"{name} must be a list of ids")
    if len(value) > limit:
        raise HttpError(400, f"{name} names {len(value)} ids; at most {limit} per request (send several requests)")
    return [json_int(v, f"{name}[{i}]", 1, INT64_MAX) for i, v in enumerate(value)]


def _walk(value: Any) -> tuple[int, int | None]:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1) and its first integer outside int64
    (None: none), without recursion."""
    deepest, too_big, stack = 0, None, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            deepest = max(deepest, depth + 1)
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
            deepest = max(deepest, depth + 1)
        elif type(item) is int and too_big is None and not INT64_MIN <= item <= INT64_MAX:
            too_big = item
    return deepest, too_big


def json_depth(value: Any) -> int:
    return _walk(value)[0]


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            return val.strip().strip('"').lower()
    return None


def decode_json(body: bytes, content_type: str, settings: Settings | None = None) -> Any:
    """The pure part of ``read_json``: charset, UTF-8, syntax and depth checks on bytes already read."""
    settings = settings or get_settings()
    charset = _charset(content_type)
    if charset is not None:
        try:
            name = codecs.lookup(charset).name
        except (LookupError, ValueError):
            raise HttpError(
                415,
                f"unknown charset {charset[:40]!r} in Content-Type; send UTF-8 JSON (Content-Type: application/json)",
            ) from None
        if name not in ("utf-8", "ascii"):
            raise HttpError(415, f"charset {charset[:40]!r} is not accepted; send UTF-8 JSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, f"the body is not UTF-8 (byte {exc.start}); send UTF-8 JSON") from None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson's own limit (1024), far above ours
            raise HttpError(400, f"the JSON body is nested deeper than {settings.http_max_json_depth} levels") from None
        raise HttpError(400, f"the body is not valid JSON: {str(exc)[:120]}") from None
    depth, too_big = _walk(value)
    if depth > settings.http_max_json_depth:
        raise HttpError(400, f"the JSON body is nested deeper than {settings.http_max_json_depth} levels")
    if too_big is not None:
        # Nothing here stores or encodes integers past 64 bits (PostgreSQL bigint, the event encoder).
        raise HttpError(400, f"the integer {str(too_big)[:30]} is outside the 64-bit range this API accepts")
    return value


async def read_json(request: web.Request, settings: Settings | None = None) -> Any:
    """The request's JSON body, read up to ``http_max_body_bytes`` (413 past it) and checked by ``decode_json``."""
    settings = settings or get_settings()
    limit = settings.http_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(413, f"the body is {request.content_length} bytes; at most {limit}")
    chunks, size = [], 0
    try:
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"the body is over {limit} bytes")
            chunks.append(chunk)
    except web.HTTPException as exc:  # the server's own body checks (e.g. a broken chunked encoding)
        raise HttpError(exc.status if exc.status >= 400 else 400, exc.reason or "unreadable body") from None
    if not size:
        raise HttpError(400, "the request has no body; send a JSON object")
    return decode_json(b"".join(chunks), request.headers.get("Content-Type", ""), settings)


async def read_object(request: web.Request, what: str, settings: Settings | None = None) -> dict[str, Any]:
    """``read_json`` for bodies that must be a JSON object; ``what`` describes the expected shape."""
    body = await read_json(request, settings)
    if not isinstance(body, dict):
        raise HttpError(400, f"the body must be a JSON object: {what}")
    return body


def check_user_id(user_id: str) -> str:
    """A user id from anywhere but the path (the path is checked for every route by the middleware)."""
    check_path_params({"user_id": user_id})
    return user_id
