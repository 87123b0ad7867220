"""The OpenAPI document: valid OpenAPI 3.1, every registered route and method in it, the query API in full."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

import crownstream.agents.all  # noqa: F401  (registers every view)
from crownstream.app import app
from crownstream.web.openapi import OPERATIONS, _implemented, build_document

QUERY_API = [
    ("/tournaments/{tournament_id}/standings", "get"),
    ("/tournaments/{tournament_id}/teams/{team_id}", "get"),
    ("/tournaments/{tournament_id}/overrides", "post"),
    ("/series/{series_id}", "get"),
    ("/tournaments/{tournament_id}/series/{series_id}", "get"),
    ("/tournaments/{tournament_id}/groups/{stage_id}", "get"),
]


@pytest.fixture(scope="module")
def document():
    return build_document(dict(app.web.views))


def test_document_is_valid_openapi(document):
    validate(document)


def test_every_registered_route_and_method_is_in_the_document(document):
    assert app.web.views, "no views registered: the test would prove nothing"
    for path, view in app.web.views.items():
        assert path in document["paths"], f"{path} is served but not documented"
        for method in _implemented(view):
            assert method in document["paths"][path], f"{method.upper()} {path} is served but not documented"


def test_path_parameters_are_declared(document):
    for path, item in document["paths"].items():
        declared = {p["name"] for p in item.get("parameters", ())}
        assert declared == set(re.findall(r"{([^}/]+)}", path)), path


@pytest.mark.parametrize(("path", "method"), QUERY_API)
def test_query_api_is_described_in_full(document, path, method):
    operation = document["paths"][path][method]
    assert operation == {"operationId": operation["operationId"], **OPERATIONS[path][method]}
    assert set(operation["responses"]) - {"default"}, "real status codes, not a placeholder"
    if method == "get":
        assert "503" in operation["responses"], "owner-routed queries answer 503 during a rebalance"


def test_described_operations_exist(document):
    # A described path that no view serves would document an API that answers 404.
    served = {(path, m) for path, view in app.web.views.items() for m in _implemented(view)}
    assert {(p, m) for p, ops in OPERATIONS.items() for m in ops} <= served


def test_undocumented_route_still_appears_with_its_docstring():
    from faust.web import View

    class Probe(View):
        """Probe route.

        Second line."""

        async def get(self, request):  # pragma: no cover - never served
            ...

    doc = build_document({"/probe/{x}": Probe(app, app.web)})
    assert doc["paths"]["/probe/{x}"]["get"]["summary"] == "Probe route."
    validate(doc)
