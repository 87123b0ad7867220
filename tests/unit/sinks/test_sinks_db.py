"""JSON for the ledger's JSONB columns: orjson's output where it can, the standard library's where it refuses."""

import json

import orjson
import pytest

from crownstream.sinks.db import dumps_json


@pytest.mark.parametrize(
    "value",
    [
        {"schema_version": 1, "contact": {"email": "a@example.com", "display_name": "Zoë ✓"}, "items": []},
        {"nested": [1, 2.5, None, True, "x\u2028y"]},
        [],
    ],
)
def test_same_document_as_the_standard_library(value):
    assert json.loads(dumps_json(value)) == value
    assert dumps_json(value) == orjson.dumps(value).decode()


def test_values_orjson_refuses_still_encode():
    big = {"kills": 2**70, "by_seed": {1: "a"}}
    encoded = dumps_json(big)
    assert json.loads(encoded) == {"kills": 2**70, "by_seed": {"1": "a"}}
