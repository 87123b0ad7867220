"""The OpenAPI document: valid OpenAPI 3.1; every route of the server's router in it with its security
requirement; no route serving user data without one; Faust's own views absent; the query API in full."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

import crownstream.web.all  # noqa: F401  (registers every view)
from crownstream.app import app
from crownstream.web.openapi import OPERATIONS, SECURITY, _implemented, build_document

QUERY_API = [
    ("/tournaments/{tournament_id}/standings", "get"),
    ("/tournaments/{tournament_id}/teams/{team_id}", "get"),
    ("/tournaments/{tournament_id}/overrides", "post"),
    ("/series/{series_id}", "get"),
    ("/tournaments/{tournament_id}/series/{series_id}", "get"),
    ("/tournaments/{tournament_id}/groups/{stage_id}", "get"),
]

#: Every operation allowed without a credential, and why. A new route is protected unless added here.
PUBLIC_OPERATIONS = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),  # health, metrics, doc
    # public tournament data
    ("get", "/tournaments/{tournament_id}/stages"),
    ("get", "/tournaments/{tournament_id}/standings"),
    ("get", "/tournaments/{tournament_id}/teams/{team_id}"),
    ("get", "/tournaments/{tournament_id}/activity"),
    ("get", "/series/{series_id}"),
    ("get", "/tournaments/{tournament_id}/series/{series_id}"),
    ("get", "/tournaments/{tournament_id}/groups/{stage_id}"),
    ("get", "/tournaments/{tournament_id}/leaderboard"),
    ("get", "/tournaments/{tournament_id}/leaderboard/events"),
    # the signed one-click unsubscribe link is its own credential
    ("get", "/users/{user_id}/unsubscribe"),
    ("post", "/users/{user_id}/unsubscribe"),
}
#: Data of one user: the owner's token or staff, never public.
USER_ROUTES = {
    ("get", "/users/{user_id}/preferences"),
    ("put", "/users/{user_id}/preferences"),
    ("get", "/users/{user_id}/feed"),
    ("post", "/users/{user_id}/feed/read"),
    ("post", "/users/{user_id}/feed/seen"),
    ("post", "/users/{user_id}/feed/archive"),
    ("post", "/users/{user_id}/feed/unarchive"),
    ("get", "/users/{user_id}/feed/events"),
    ("get", "/users/{user_id}/webhooks"),
    ("post", "/users/{user_id}/webhooks"),
    ("post", "/webhooks/{endpoint_id}/rotate"),
    ("post", "/webhooks/{endpoint_id}/enable"),
    ("get", "/webhooks/{endpoint_id}/deliveries"),
    ("post", "/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend"),
    ("post", "/webhooks/{endpoint_id}/recover"),
    ("post", "/webhooks/{endpoint_id}/pause"),
    ("post", "/webhooks/{endpoint_id}/resume"),
}
FAUST_PREFIXES = ("/table", "/router", "/graph", "/performance", "/stats", "/assignment")


@pytest.fixture(scope="module")
def document():
    return build_document(dict(app.web.views))


@pytest.fixture(scope="module")
def live_routes():
    """The aiohttp router as a worker's web server has it: built by the same init_server call the worker's
    web service makes at start (Faust's blueprints, then our middleware)."""
    if not list(app.web.web_app.router.routes()):
        app.web.init_server()
    return {(route.method.lower(), route.resource.canonical) for route in app.web.web_app.router.routes()}


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield method, path, operation


def test_document_is_valid_openapi(document):
    validate(document)


def test_every_route_of_the_router_is_documented(document, live_routes):
    assert len(live_routes) > 20, "the router is empty: the test would prove nothing"
    documented = {(m, p) for m, p, _ in operations(document)}
    for method, path in live_routes:
        if method == "head":
            # Faust adds HEAD to every view; it runs the view's own (guarded) GET, or answers 405 without one.
            assert ("get", path) in documented or "get" not in _implemented(app.web.views[path]), path
            continue
        assert (method, path) in documented, f"{method.upper()} {path} is served but not documented"
    assert documented <= live_routes, f"documented but not served: {documented - live_routes}"


def test_faust_own_views_are_not_served(live_routes):
    served = {path for _, path in live_routes}
    assert "/" not in served
    assert not [p for p in served if p.startswith(FAUST_PREFIXES)], served


def test_every_operation_declares_its_security(document):
    for method, path, operation in operations(document):
        assert "security" in operation, f"{method.upper()} {path} declares no @access policy"
        assert operation["security"] in SECURITY.values()
        schemes = {name for requirement in operation["security"] for name in requirement}
        assert schemes <= set(document["components"]["securitySchemes"])
        if operation["security"]:
            assert {"401", "403"} <= set(operation["responses"]), f"{method.upper()} {path}"


def test_no_route_serves_user_data_without_a_credential(document):
    public = {(m, p) for m, p, op in operations(document) if op["security"] == []}
    assert public <= PUBLIC_OPERATIONS, f"public but not known to be public data: {public - PUBLIC_OPERATIONS}"
    by_key = {(m, p): op for m, p, op in operations(document)}
    for key in USER_ROUTES:
        assert by_key[key]["security"] == SECURITY["user"], key
    for (method, path), op in by_key.items():
        if path.startswith("/ops/") or path.startswith("/notifications/") or path.endswith("/overrides"):
            assert op["security"] == SECURITY["staff"], (method, path)


def test_path_parameters_are_declared(document):
    for path, item in document["paths"].items():
        declared = {p["name"] for p in item.get("parameters", ())}
        assert declared == set(re.findall(r"{([^}/]+)}", path)), path
        assert all(p["schema"]["maxLength"] == 128 for p in item.get("parameters", ())), path


@pytest.mark.parametrize(("path", "method"), QUERY_API)
def test_query_api_is_described_in_full(document, path, method):
    operation = document["paths"][path][method]
    for key, value in OPERATIONS[path][method].items():
        if key != "responses":
            assert operation[key] == value, key
    assert OPERATIONS[path][method]["responses"].items() <= operation["responses"].items()
    assert set(operation["responses"]) - {"default"}, "real status codes, not a placeholder"
    if method == "get":
        assert "503" in operation["responses"], "owner-routed queries answer 503 during a rebalance"


def test_described_operations_exist(document):
    # A described path that no view serves would document an API that answers 404.
    served = {(path, m) for path, view in app.web.views.items() for m in _implemented(view)}
    assert {(p, m) for p, ops in OPERATIONS.items() for m in ops} <= served
    assert not [(m, p) for m, p, op in operations(document) if "default" in op["responses"]], (
        "every served operation is described, none from its docstring alone"
    )


def test_undocumented_route_still_appears_and_is_flagged_without_a_policy():
    from faust.web import View

    class Probe(View):
        """Probe route.

        Second line."""

        async def get(self, request):  # pragma: no cover - never served
            ...

    doc = build_document({"/probe/{x}": Probe(app, app.web)})
    operation = doc["paths"]["/probe/{x}"]["get"]
    assert operation["summary"] == "Probe route."
    assert "security" not in operation and operation["x-crownstream-access"] == "undeclared"
    validate(doc)
