"""The OpenAPI 3.1 document of the worker's HTTP API, served at ``GET /openapi.json`` by every worker.

The paths come from the routes actually registered on the app, so a route can never be missing from the
document; the query API (standings, teams, series, groups, overrides) is described in full here, and any other
route gets an entry built from its view's docstring and path parameters until its module documents it.
"""

from __future__ import annotations

import re
from typing import Any

from faust.web import Request, Response, View

from crownstream.app import app

VERSION = "1.0.0"
METHODS = ("get", "post", "put", "patch", "delete")

_ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string", "description": "What was wrong and what to do."}}}
_NOT_READY = {"type": "object", "required": ["error", "reason", "retry_after"], "properties": {
    "error": {"const": "not ready"}, "reason": {"type": "string"}, "retry_after": {"type": "integer"}}}

SCHEMAS: dict[str, Any] = {
    "Error": _ERROR,
    "NotReady": _NOT_READY,
    "BattleRoyaleStanding": {"type": "object", "properties": {
        "rank": {"type": "integer", "minimum": 1}, "team_id": {"type": "string"}, "team_name": {"type": "string"},
        "total_points": {"type": "integer"}, "placement_points": {"type": "integer"},
        "kill_points": {"type": "integer"}, "kills": {"type": "integer"}, "wins": {"type": "integer"},
        "best_placement": {"type": ["integer", "null"]}, "average_placement": {"type": ["number", "null"]},
        "matches_played": {"type": "integer"}, "last_match_placement": {"type": ["integer", "null"]},
        "reached_total_at": {"type": ["string", "null"], "description": "Completion time of the match that set "
                             "the current total (the 'earliest completion' tiebreaker)."},
        "starting_points": {"type": "integer"}, "disqualified": {"type": "boolean"}, "champion": {"type": "boolean"}},
        "additionalProperties": True},
    "Standings": {"type": "object", "required": ["tournament_id", "stage_id", "standings"], "properties": {
        "tournament_id": {"type": "string"}, "stage_id": {"type": "string"}, "teams": {"type": "integer"},
        "offset": {"type": "integer"}, "limit": {"type": "integer"},
        "matches": {"type": "array", "items": {"type": "string"}},
        "champion": {"type": ["string", "null"], "description": "Match-point finals: the champion, once decided."},
        "standings": {"type": "array", "items": {"$ref": "#/components/schemas/BattleRoyaleStanding"}}}},
    "TeamStanding": {"allOf": [{"$ref": "#/components/schemas/BattleRoyaleStanding"}, {"type": "object", "properties": {
        "matches": {"type": "array", "items": {"type": "object"}, "description": "Per-match points of the team."},
        "overrides": {"type": "array", "items": {"type": "object"},
                      "description": "Audit trail: staff overrides of this team's results (actor, reason, time)."}}}]},
    "Series": {"type": "object", "required": ["series_id", "team_a", "team_b", "status", "score", "games"], "properties": {
        "tournament_id": {"type": "string"}, "stage_id": {"type": "string"}, "series_id": {"type": "string"},
        "team_a": {"type": "string"}, "team_b": {"type": "string"},
        "format": {"type": "object", "properties": {"best_of": {"enum": [1, 2, 3, 5, 7]},
                                                     "forfeit_score": {"enum": ["awarded", "played"]}}},
        "status": {"enum": ["scheduled", "in_progress", "completed"]},
        "score": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "winner": {"type": ["string", "null"]}, "is_draw": {"type": "boolean"},
        "forfeited_by": {"type": ["string", "null"]},
        "games": {"type": "array", "items": {"type": "object", "properties": {
            "game_number": {"type": "integer"}, "winner_team_id": {"type": "string"},
            "source": {"enum": ["result", "override"]}, "revision": {"type": ["integer", "null"]},
            "reported_winner": {"type": ["string", "null"]}, "counted": {"type": "boolean"},
            "note": {"type": "string"}}}},
        "audit": {"type": "array", "items": {"type": "object"},
                  "description": "Staff overrides and forfeits, each with actor, reason, time and whether it is effective."}}},
    "GroupStandings": {"type": "object", "required": ["tournament_id", "stage_id", "standings"], "properties": {
        "tournament_id": {"type": "string"}, "stage_id": {"type": "string"}, "rules": {"type": "object"},
        "series": {"type": "array", "items": {"type": "string"}},
        "standings": {"type": "array", "items": {"type": "object", "properties": {
            "rank": {"type": "integer"}, "team_id": {"type": "string"}, "team_name": {"type": "string"},
            "played": {"type": "integer"}, "wins": {"type": "integer"}, "draws": {"type": "integer"},
            "losses": {"type": "integer"}, "game_wins": {"type": "integer"}, "game_losses": {"type": "integer"},
            "game_diff": {"type": "integer"}, "points": {"type": "integer"},
            "decided_by": {"type": "string", "description": "The criterion that put the team below the one above."}}}}}},
    "OverrideRequest": {"type": "object", "required": ["stage_id", "match_id", "actor", "reason"],
                        "description": "A result.overridden event without type/tournament_id (taken from the path); "
                                       "either team_id + placement [+ kills] or series_id + game_number + winner_team_id.",
                        "properties": {"event_id": {"type": "string"}, "stage_id": {"type": "string"},
                                       "match_id": {"type": "string"}, "actor": {"type": "string"},
                                       "reason": {"type": "string"}, "team_id": {"type": "string"},
                                       "placement": {"type": "integer", "minimum": 1},
                                       "kills": {"type": "integer", "minimum": 0}, "series_id": {"type": "string"},
                                       "game_number": {"type": "integer", "minimum": 1, "maximum": 7},
                                       "winner_team_id": {"type": "string"}}},
    "OverrideAccepted": {"type": "object", "properties": {
        "accepted": {"const": True}, "event_id": {"type": "string"}, "partition": {"type": "integer"},
        "offset": {"type": "integer"}}},
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


_STAGE = _query("stage", "The stage; optional when the tournament has exactly one battle-royale stage.",
                {"type": "string"})
_ROUTED = {
    "404": _json("Unknown tournament, stage, team or series.", "Error"),
    "503": {**_json("The group is rebalancing or the owner's tables are recovering; retry after Retry-After "
                    "seconds. Never a stale or empty answer.", "NotReady"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
}

#: path -> method -> operation. Every query of the standings engine; see also ``describe_routes``.
OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/tournaments/{tournament_id}/standings": {"get": {
        "summary": "Battle-royale standings of a stage", "tags": ["standings"],
        "description": "Ranked with the stage's tiebreakers; any worker answers (forwarded once to the owner).",
        "parameters": [_STAGE,
                       _query("matches", "Comma-separated match ids: standings over only these matches.",
                              {"type": "string"}),
                       _query("offset", "Rows to skip.", {"type": "integer", "minimum": 0, "default": 0}),
                       _query("limit", "Rows to return.", {"type": "integer", "minimum": 1, "maximum": 1000,
                                                           "default": 100})],
        "responses": {"200": _json("The standings page.", "Standings"),
                      "400": _json("Bad paging, or a stage must be chosen.", "Error"), **_ROUTED}}},
    "/tournaments/{tournament_id}/teams/{team_id}": {"get": {
        "summary": "One team's standing, per-match points and override audit trail", "tags": ["standings"],
        "parameters": [_STAGE],
        "responses": {"200": _json("The team's standing.", "TeamStanding"), **_ROUTED}}},
    "/tournaments/{tournament_id}/stages": {"get": {
        "summary": "The tournament's stages and number of registered teams", "tags": ["standings"],
        "responses": {"200": {"description": "Stages by id with name and format."}, **_ROUTED}}},
    "/tournaments/{tournament_id}/overrides": {"post": {
        "summary": "Staff override of a result (produces a result.overridden event)", "tags": ["standings"],
        "security": [{"staffToken": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("OverrideRequest")}}},
        "responses": {"202": _json("Accepted: the event was produced; standings follow once it is folded.",
                                   "OverrideAccepted"),
                      "400": _json("The body is not a JSON object.", "Error"),
                      "401": _json("Missing or wrong staff bearer token.", "Error"),
                      "422": _json("The override is invalid; one line per problem.", "Error")}}},
    "/series/{series_id}": {"get": {
        "summary": "A series: score, status, winner, games and audit trail", "tags": ["series"],
        "parameters": [_query("tournament", "The tournament the series belongs to.", {"type": "string"},
                              required=True)],
        "responses": {"200": _json("The series.", "Series"),
                      "400": _json("?tournament= is missing.", "Error"), **_ROUTED}}},
    "/tournaments/{tournament_id}/series/{series_id}": {"get": {
        "summary": "A series of the tournament", "tags": ["series"],
        "responses": {"200": _json("The series.", "Series"), **_ROUTED}}},
    "/tournaments/{tournament_id}/groups/{stage_id}": {"get": {
        "summary": "Round-robin group standings of a series stage", "tags": ["series"],
        "description": "Points per series result, then head-to-head among tied teams, game difference, game wins.",
        "responses": {"200": _json("The group standings.", "GroupStandings"), **_ROUTED}}},
    "/openapi.json": {"get": {"summary": "This document", "tags": ["ops"],
                              "responses": {"200": {"description": "OpenAPI 3.1 JSON."}}}},
}

_PARAM = re.compile(r"{([^}/]+)}")


def _implemented(view: View) -> list[str]:
    return [m for m in METHODS if getattr(type(view), m) is not getattr(View, m)]


def _undocumented(view: View, method: str) -> dict[str, Any]:
    doc = (type(view).__doc__ or "").strip()
    return {"summary": doc.splitlines()[0] if doc else type(view).__name__,
            **({"description": doc} if doc else {}),
            "responses": {"default": {"description": "See the view's module for the response."}}}


def build_document(views: dict[str, View]) -> dict[str, Any]:
    """The document for the routes in ``views`` (path -> view instance, as ``app.web.views``)."""
    paths: dict[str, Any] = {}
    for path, view in sorted(views.items()):
        item: dict[str, Any] = {}
        for method in _implemented(view):
            operation = OPERATIONS.get(path, {}).get(method) or _undocumented(view, method)
            item[method] = {"operationId": f"{method}{type(view).__name__}", **operation}
        names = _PARAM.findall(path)
        if names:
            item["parameters"] = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                                  for n in names]
        paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "Crownstream worker API", "version": VERSION,
                 "description": "Standings queries answered by any worker of the group (forwarded once to the "
                                "worker that owns the tournament), staff overrides, health and metrics."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"staffToken": {"type": "http", "scheme": "bearer",
                                                          "description": "CROWNSTREAM_STAFF_TOKEN"}}},
    }


@app.page("/openapi.json")
class OpenApi(View):
    """The OpenAPI document of every route this worker serves."""

    async def get(self, request: Request) -> Response:
        return self.json(build_document(dict(app.web.views)))
