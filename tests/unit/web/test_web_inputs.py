"""Reading client input: every malformation a 4xx that says what was wrong."""

from __future__ import annotations

import pytest

from crownstream.settings import Settings
from crownstream.web.errors import HttpError
from crownstream.web.inputs import (
    INT64_MAX,
    check_path_params,
    decode_json,
    id_list,
    json_depth,
    json_int,
    parse_int,
)

SETTINGS = Settings(http_max_json_depth=8, http_max_ids=5)


def refused(fn, *args) -> int:
    with pytest.raises(HttpError) as exc:
        fn(*args)
    assert exc.value.message
    return exc.value.status


def test_json_bodies():
    assert decode_json(b'{"a": [1, {"b": "\xc3\xa9"}]}', "application/json", SETTINGS) == {"a": [1, {"b": "é"}]}
    assert decode_json(b"[]", "application/json; charset=UTF-8", SETTINGS) == []
    assert decode_json(b"[]", 'application/json; charset="utf8"', SETTINGS) == []
    deep = b"[" * 9 + b"]" * 9
    assert refused(decode_json, deep, "application/json", SETTINGS) == 400
    assert decode_json(b"[" * 8 + b"]" * 8, "application/json", SETTINGS) is not None
    assert refused(decode_json, b"[" * 100_000, "application/json", SETTINGS) == 400  # orjson's own limit
    assert refused(decode_json, b'{"a": "\xff"}', "application/json", SETTINGS) == 400  # not UTF-8
    assert refused(decode_json, b'{"a": 1', "application/json", SETTINGS) == 400
    assert refused(decode_json, b"[1e999]", "application/json", SETTINGS) == 400
    assert refused(decode_json, b'"\\ud800"', "application/json", SETTINGS) == 400  # lone surrogate
    assert refused(decode_json, b'{"a": [18446744073709551615]}', "application/json", SETTINGS) == 400  # > int64
    assert decode_json(b"[9223372036854775807, -9223372036854775808]", "application/json", SETTINGS) is not None
    for charset in ("klingon", "\ufffd", "utf-16", "latin-1", "x" * 300):
        assert refused(decode_json, b"[]", f"application/json; charset={charset}", SETTINGS) == 415, charset


def test_json_depth():
    assert json_depth(1) == 0 and json_depth([]) == 1 and json_depth({"a": [{}]}) == 3
    value: list = []
    for _ in range(5000):
        value = [value]
    assert json_depth(value) == 5001  # no recursion limit


def test_integers():
    assert parse_int("42", "n") == 42 and parse_int("-7", "n") == -7
    assert parse_int(str(INT64_MAX), "n") == INT64_MAX
    for raw in (str(INT64_MAX + 1), "1" * 5000, "１２", "1_000", "1.0", "", " 1", "0x10", "true"):
        assert refused(parse_int, raw, "n") == 400, raw
    assert refused(parse_int, "0", "n", 1, 10) == 400
    assert json_int(5, "n") == 5
    for value in (True, False, 1.0, "1", None, INT64_MAX + 1, -(2**63) - 1, [1]):
        assert refused(json_int, value, "n") == 400, value


def test_id_lists():
    assert id_list([1, 2, 3], "ids", SETTINGS) == [1, 2, 3]
    assert id_list([], "ids", SETTINGS) == []
    assert refused(id_list, list(range(1, 7)), "ids", SETTINGS) == 400  # more than http_max_ids
    assert refused(id_list, list(range(1, 32_769)), "ids", Settings()) == 400  # asyncpg's parameter limit
    for bad in ([True], [1.5], ["1"], [2**63], [0], [-1], "1,2", {"a": 1}, None):
        assert refused(id_list, bad, "ids", SETTINGS) == 400, bad


def test_path_parameters():
    check_path_params({"user_id": "ada", "tournament_id": "t" * 128, "x": "ünïcödé ok"})
    for value in ("a" * 129, "a\x00b", "a\nb", "\x7f", "a\u2028", "\udcff", ""):
        assert refused(check_path_params, {"user_id": value}) == 400, repr(value)
