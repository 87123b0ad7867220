"""The OpenAPI 3.1 document of the worker's HTTP API, served at ``GET /openapi.json`` by every worker.

The paths come from the routes actually registered on the app, so a route can never be missing from the
document, and each operation's ``security`` comes from the ``@access`` policy its view method declares
(web/auth.py), so the document cannot claim less protection than the route enforces. Operations are
described in full here; a route not described yet still gets an entry from its view's docstring.
"""

from __future__ import annotations

import re
from typing import Any

from faust.web import Request, Response, View

from crownstream.app import app
from crownstream.notifications.preferences import Preferences
from crownstream.settings import get_settings
from crownstream.web.auth import PUBLIC, STAFF, USER, access, policy_of
from crownstream.web.inputs import INT64_MAX, MAX_PATH_PARAM

VERSION = "1.0.0"
METHODS = ("get", "post", "put", "patch", "delete")

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What was wrong and what to do."}},
}
_NOT_READY = {
    "type": "object",
    "required": ["error", "reason", "retry_after"],
    "properties": {"error": {"const": "not ready"}, "reason": {"type": "string"}, "retry_after": {"type": "integer"}},
}

SCHEMAS: dict[str, Any] = {
    "Error": _ERROR,
    "NotReady": _NOT_READY,
    "BattleRoyaleStanding": {
        "type": "object",
        "properties": {
            "rank": {"type": "integer", "minimum": 1},
            "team_id": {"type": "string"},
            "team_name": {"type": "string"},
            "total_points": {"type": "integer"},
            "placement_points": {"type": "integer"},
            "kill_points": {"type": "integer"},
            "kills": {"type": "integer"},
            "wins": {"type": "integer"},
            "best_placement": {"type": ["integer", "null"]},
            "average_placement": {"type": ["number", "null"]},
            "matches_played": {"type": "integer"},
            "last_match_placement": {"type": ["integer", "null"]},
            "reached_total_at": {
                "type": ["string", "null"],
                "description": "Completion time of the match that set "
                "the current total (the 'earliest completion' tiebreaker).",
            },
            "starting_points": {"type": "integer"},
            "disqualified": {"type": "boolean"},
            "champion": {"type": "boolean"},
            "counted_matches": {"type": "integer", "description": "Matches that scored (the averages' divisor)."},
            "placement_sum": {"type": "integer"},
            "placed_matches": {"type": "integer"},
            "time_alive_s": {"type": "integer", "description": "Seconds survived, over the matches that report it."},
            "timed_matches": {"type": "integer"},
            "best_game_points": {"type": ["integer", "null"]},
            "decided_by": {
                "type": "string",
                "description": "The tiebreaker that ranks this team below the one listed above it; 'tie' when none "
                "does (the two share a rank); empty for the first team.",
            },
        },
        "additionalProperties": True,
    },
    "Standings": {
        "type": "object",
        "required": ["tournament_id", "stage_id", "standings"],
        "properties": {
            "tournament_id": {"type": "string"},
            "stage_id": {"type": "string"},
            "teams": {"type": "integer"},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "matches": {"type": "array", "items": {"type": "string"}},
            "champion": {"type": ["string", "null"], "description": "Match-point finals: the champion, once decided."},
            "standings": {"type": "array", "items": {"$ref": "#/components/schemas/BattleRoyaleStanding"}},
        },
    },
    "TeamStanding": {
        "allOf": [
            {"$ref": "#/components/schemas/BattleRoyaleStanding"},
            {
                "type": "object",
                "properties": {
                    "matches": {
                        "type": "array",
                        "items": {"type": "object"},
                        "description": "Per-match points of the team.",
                    },
                    "overrides": {
                        "type": "array",
                        "items": {"type": "object"},
                        "description": "Audit trail: staff overrides of this team's results (actor, reason, time).",
                    },
                },
            },
        ]
    },
    "Series": {
        "type": "object",
        "required": ["series_id", "team_a", "team_b", "status", "score", "games"],
        "properties": {
            "tournament_id": {"type": "string"},
            "stage_id": {"type": "string"},
            "series_id": {"type": "string"},
            "team_a": {"type": "string"},
            "team_b": {"type": "string"},
            "format": {
                "type": "object",
                "properties": {"best_of": {"enum": [1, 2, 3, 5, 7]}, "forfeit_score": {"enum": ["awarded", "played"]}},
            },
            "status": {"enum": ["scheduled", "in_progress", "completed"]},
            "score": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            "winner": {"type": ["string", "null"]},
            "is_draw": {"type": "boolean"},
            "forfeited_by": {"type": ["string", "null"]},
            "games": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "game_number": {"type": "integer"},
                        "winner_team_id": {"type": "string"},
                        "source": {"enum": ["result", "override"]},
                        "revision": {"type": ["integer", "null"]},
                        "reported_winner": {"type": ["string", "null"]},
                        "counted": {"type": "boolean"},
                        "note": {"type": "string"},
                    },
                },
            },
            "audit": {
                "type": "array",
                "items": {"type": "object"},
                "description": "Staff overrides and forfeits, each with actor, reason, time and whether it is "
                "effective.",
            },
        },
    },
    "GroupStandings": {
        "type": "object",
        "required": ["tournament_id", "stage_id", "standings"],
        "properties": {
            "tournament_id": {"type": "string"},
            "stage_id": {"type": "string"},
            "format": {"enum": ["series_group", "swiss", "bracket"]},
            "rules": {"type": "object"},
            "series": {"type": "array", "items": {"type": "string"}},
            "rounds": {
                "type": "array",
                "description": "Swiss: the announced rounds and their pairings (source generated or staff).",
                "items": {"type": "object"},
            },
            "matches": {
                "type": "array",
                "description": "Bracket: every slot, its teams as the results so far decide them, winner and status "
                "(waiting, ready, completed, bye, not_played, conflict).",
                "items": {"type": "object"},
            },
            "standings": {
                "type": "array",
                "description": "Group: W-D-L, maps, rounds, points. Swiss: record, difficulty (Buchholz), initial "
                "seed, status. Bracket: place (teams out in the same round share it) or alive. Teams no rule "
                "separates share a rank; decided_by names the rule that split each pair ('tie' if none).",
                "items": {
                    "type": "object",
                    "properties": {
                        "rank": {"type": ["integer", "null"]},
                        "team_id": {"type": "string"},
                        "team_name": {"type": "string"},
                        "played": {"type": "integer"},
                        "wins": {"type": "integer"},
                        "draws": {"type": "integer"},
                        "losses": {"type": "integer"},
                        "game_wins": {"type": "integer"},
                        "game_losses": {"type": "integer"},
                        "game_diff": {"type": "integer"},
                        "points": {"type": "integer"},
                        "decided_by": {
                            "type": "string",
                            "description": "The criterion that put the team below the one above.",
                        },
                    },
                },
            },
        },
    },
    "OverrideRequest": {
        "type": "object",
        "required": ["stage_id", "match_id", "actor", "reason"],
        "description": "A result.overridden event without type/tournament_id (taken from the path); "
        "either team_id + placement [+ kills] or series_id + game_number + winner_team_id.",
        "properties": {
            "event_id": {"type": "string"},
            "stage_id": {"type": "string"},
            "match_id": {"type": "string"},
            "actor": {"type": "string"},
            "reason": {"type": "string"},
            "team_id": {"type": "string"},
            "placement": {"type": "integer", "minimum": 1},
            "kills": {"type": "integer", "minimum": 0},
            "series_id": {"type": "string"},
            "game_number": {"type": "integer", "minimum": 1, "maximum": 7},
            "winner_team_id": {"type": "string"},
        },
    },
    "OverrideAccepted": {
        "type": "object",
        "properties": {
            "accepted": {"const": True},
            "event_id": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "Accepted": {
        "type": "object",
        "properties": {
            "accepted": {"const": True},
            "event_id": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "UserPreferences": {
        "type": "object",
        "required": ["user_id", "defaults", "preferences"],
        "properties": {
            "user_id": {"type": "string"},
            "defaults": {"type": "boolean", "description": "True: never set."},
            "preferences": {"$ref": "#/components/schemas/Preferences"},
        },
    },
    "FeedPage": {
        "type": "object",
        "required": ["user_id", "unread_count", "unseen_count", "items", "next_before"],
        "properties": {
            "user_id": {"type": "string"},
            "unread_count": {"type": "integer", "description": "Items not opened yet; archived ones not counted."},
            "unseen_count": {"type": "integer", "description": "Items not seen yet (the badge's 'new')."},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/FeedItem"}},
            "next_before": {"type": ["integer", "null"], "description": "Pass as ?before= for the next page."},
        },
    },
    "FeedItem": {
        "type": "object",
        "required": ["id", "notification_type", "title", "seen", "read", "archived"],
        "properties": {
            "id": {"type": "integer", "description": "Monotonic per user: the live stream's event id."},
            "dedup_key": {"type": "string"},
            "notification_type": {"type": "string"},
            "tournament_id": {"type": ["string", "null"]},
            "title": {"type": "string"},
            "body": {"type": "string"},
            "url": {"type": ["string", "null"]},
            "data": {"type": "object"},
            "critical": {"type": "boolean"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "seen": {"type": "boolean"},
            "seen_at": {"type": ["string", "null"], "format": "date-time"},
            "read": {"type": "boolean"},
            "read_at": {"type": ["string", "null"], "format": "date-time"},
            "archived": {"type": "boolean"},
            "archived_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "FeedSelection": {
        "description": "The user's items a change applies to: these ids, every one up to and including up_to, or all.",
        "oneOf": [
            {
                "type": "object",
                "required": ["ids"],
                "additionalProperties": False,
                "properties": {
                    "ids": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": INT64_MAX}}
                },
            },
            {
                "type": "object",
                "required": ["up_to"],
                "additionalProperties": False,
                "properties": {"up_to": {"type": "integer", "minimum": 0, "maximum": INT64_MAX}},
            },
            {
                "type": "object",
                "required": ["all"],
                "additionalProperties": False,
                "properties": {"all": {"const": True}},
            },
        ],
    },
    "FeedChange": {
        "type": "object",
        "required": ["changed", "unread_count", "unseen_count"],
        "properties": {
            "changed": {"type": "integer", "description": "Items whose state this changed (0 when repeated)."},
            "marked_read": {"type": "integer", "description": "/feed/read only: the same as changed."},
            "unread_count": {"type": "integer"},
            "unseen_count": {"type": "integer"},
        },
    },
    "WebhookEndpoint": {
        "type": "object",
        "description": "An endpoint without its secrets.",
        "properties": {
            "id": {"type": "string"},
            "user_id": {"type": "string"},
            "url": {"type": "string"},
            "event_types": {"type": "array", "items": {"type": "string"}},
            "enabled": {"type": "boolean"},
            "rate_limit_per_second": {
                "type": ["number", "null"],
                "description": "At most this many deliveries a second, cluster-wide; null: no limit.",
            },
            "signature_scheme": {
                "type": "string",
                "enum": ["v1", "v1a"],
                "description": "v1: HMAC-SHA256 with a shared whsec_ secret; v1a: Ed25519, verified with whpk_ keys.",
            },
            "public_keys": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The whpk_ public keys whose v1a signatures the endpoint receives now, newest first.",
            },
        },
        "additionalProperties": True,
    },
    "Deliveries": {
        "type": "object",
        "properties": {
            "endpoint_id": {"type": "string"},
            "deliveries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "The webhook-id (the dedup key)."},
                        "notification_type": {"type": "string"},
                        "state": {"type": "string", "enum": ["pending", "retrying", "sending", "sent", "dead"]},
                        "attempt_count": {"type": "integer"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "sent_at": {"type": ["string", "null"], "format": "date-time"},
                        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                        "last_error": {"type": ["string", "null"]},
                        "attempts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "at": {"type": "string"},
                                    "status": {"type": "string"},
                                    "code": {"type": ["integer", "null"]},
                                    "latency_ms": {"type": ["number", "null"]},
                                    "error": {"type": ["string", "null"], "description": "The answer, cut short."},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "WebhookCreate": {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "description": "https URL of a public host; checked at registration."},
            "event_types": {"type": "array", "items": {"type": "string"}, "description": "Empty: every type."},
            "signature_scheme": {
                "type": "string",
                "enum": ["v1", "v1a"],
                "default": "v1",
                "description": "v1: HMAC-SHA256, the answer holds the whsec_ secret (once); v1a: Ed25519, the answer "
                "holds the whpk_ public key (the private key never leaves the server).",
            },
            "rate_limit_per_second": {
                "type": ["number", "null"],
                "minimum": 0.01,
                "description": "At most this many deliveries a second; the rest wait (CROWNSTREAM_WEBHOOK_RATE_LIMIT_"
                "MAX_PER_SECOND is the highest allowed).",
            },
        },
    },
    "WebhookKey": {
        "type": "object",
        "description": "What the receiver verifies the new signing key with: the v1 secret (shown once) or the "
        "v1a public key.",
        "properties": {
            "secret": {"type": "string", "description": "whsec_…, for a v1 endpoint."},
            "public_key": {"type": "string", "description": "whpk_…, for a v1a endpoint."},
        },
    },
    "RateLimit": {
        "type": "object",
        "required": ["endpoint_id", "rate_limit_per_second"],
        "properties": {"endpoint_id": {"type": "string"}, "rate_limit_per_second": {"type": ["number", "null"]}},
    },
}
# The notification preferences document, from its pydantic model (its nested models beside it).
_PREFS_SCHEMA = Preferences.model_json_schema(ref_template="#/components/schemas/{model}")
SCHEMAS.update(_PREFS_SCHEMA.pop("$defs", {}))
SCHEMAS["Preferences"] = _PREFS_SCHEMA


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """A JSON request body: a component's ``_ref`` or an inline schema."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


_STAGE = _query(
    "stage", "The stage; optional when the tournament has exactly one battle-royale stage.", {"type": "string"}
)
_ROUTED = {
    "404": _json("Unknown tournament, stage, team or series.", "Error"),
    "503": {
        **_json(
            "The group is rebalancing or the owner's tables are recovering; retry after Retry-After "
            "seconds. Never a stale or empty answer.",
            "NotReady",
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}

#: path -> method -> operation. Every query of the standings engine; see also ``describe_routes``.
OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/tournaments/{tournament_id}/standings": {
        "get": {
            "summary": "Battle-royale standings of a stage",
            "tags": ["standings"],
            "description": "Ranked with the stage's tiebreakers; any worker answers (forwarded once to the owner).",
            "parameters": [
                _STAGE,
                _query("matches", "Comma-separated match ids: standings over only these matches.", {"type": "string"}),
                _query("offset", "Rows to skip.", {"type": "integer", "minimum": 0, "default": 0}),
                _query("limit", "Rows to return.", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            ],
            "responses": {
                "200": _json("The standings page.", "Standings"),
                "400": _json("Bad paging, or a stage must be chosen.", "Error"),
                **_ROUTED,
            },
        }
    },
    "/tournaments/{tournament_id}/teams/{team_id}": {
        "get": {
            "summary": "One team's standing, per-match points and override audit trail",
            "tags": ["standings"],
            "parameters": [_STAGE],
            "responses": {"200": _json("The team's standing.", "TeamStanding"), **_ROUTED},
        }
    },
    "/tournaments/{tournament_id}/stages": {
        "get": {
            "summary": "The tournament's stages and number of registered teams",
            "tags": ["standings"],
            "responses": {"200": {"description": "Stages by id with name and format."}, **_ROUTED},
        }
    },
    "/tournaments/{tournament_id}/overrides": {
        "post": {
            "summary": "Staff override of a result (produces a result.overridden event)",
            "tags": ["standings"],
            "requestBody": _body(_ref("OverrideRequest")),
            "responses": {
                "202": _json(
                    "Accepted: the event was produced; standings follow once it is folded.", "OverrideAccepted"
                ),
                "400": _json("The body is not a JSON object.", "Error"),
                "422": _json("The override is invalid; one line per problem.", "Error"),
            },
        }
    },
    "/series/{series_id}": {
        "get": {
            "summary": "A series: score, status, winner, games and audit trail",
            "tags": ["series"],
            "parameters": [
                _query("tournament", "The tournament the series belongs to.", {"type": "string"}, required=True)
            ],
            "responses": {
                "200": _json("The series.", "Series"),
                "400": _json("?tournament= is missing.", "Error"),
                **_ROUTED,
            },
        }
    },
    "/tournaments/{tournament_id}/series/{series_id}": {
        "get": {
            "summary": "A series of the tournament",
            "tags": ["series"],
            "responses": {"200": _json("The series.", "Series"), **_ROUTED},
        }
    },
    "/tournaments/{tournament_id}/groups/{stage_id}": {
        "get": {
            "summary": "Round-robin group standings of a series stage",
            "tags": ["series"],
            "description": "Points per series result, then head-to-head among tied teams, game difference, game wins.",
            "responses": {"200": _json("The group standings.", "GroupStandings"), **_ROUTED},
        }
    },
    "/openapi.json": {
        "get": {"summary": "This document", "tags": ["ops"], "responses": {"200": {"description": "OpenAPI 3.1 JSON."}}}
    },
    "/tournaments/{tournament_id}/leaderboard": {
        "get": {
            "summary": "Live leaderboard page (HTML) of a battle-royale stage",
            "tags": ["standings"],
            "parameters": [_STAGE],
            "responses": {
                "200": {
                    "description": "The page, with the standings rendered and a live event stream.",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "400": _json("A stage must be chosen.", "Error"),
                **_ROUTED,
            },
        }
    },
    "/tournaments/{tournament_id}/leaderboard/events": {
        "get": {
            "summary": "Server-sent events of a stage's standings (the page's live feed)",
            "tags": ["standings"],
            "parameters": [_STAGE],
            "responses": {
                "200": {
                    "description": "text/event-stream: 'standings' events with the whole first page.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": _json("A stage must be chosen.", "Error"),
                **_ROUTED,
            },
        }
    },
    "/tournaments/{tournament_id}/activity": {
        "get": {
            "summary": "Events seen per type for a tournament, and the latest event time",
            "tags": ["standings"],
            "responses": {"200": {"description": "Counts per event type."}, **_ROUTED},
        }
    },
    "/users/{user_id}/preferences": {
        "get": {
            "summary": "A user's notification preferences (contact details included)",
            "tags": ["users"],
            "responses": {
                "200": _json("The preferences, or the defaults if never set.", "UserPreferences"),
                "503": _ROUTED["503"],
            },
        },
        "put": {
            "summary": "Replace a user's notification preferences (produces preferences.updated)",
            "tags": ["users"],
            "requestBody": _body(_ref("Preferences")),
            "responses": {
                "202": _json("Accepted: applied once the event is folded.", "Accepted"),
                "422": _json("The preferences are invalid; what and why.", "Error"),
            },
        },
    },
    "/users/{user_id}/feed": {
        "get": {
            "summary": "A user's in-app feed, newest first, keyset-paged",
            "tags": ["users"],
            "parameters": [
                _query("limit", "Items per page.", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
                _query(
                    "before",
                    "The previous page's next_before.",
                    {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
                ),
                _query("unread", "Only unread items.", {"type": "boolean"}),
                _query("archived", "Only archived items (they are left out otherwise).", {"type": "boolean"}),
            ],
            "responses": {"200": _json("One page of the feed, the unread and unseen counts.", "FeedPage")},
        }
    },
    **{
        f"/users/{{user_id}}/feed/{action}": {
            "post": {
                "summary": summary,
                "tags": ["users"],
                "requestBody": _body(_ref("FeedSelection")),
                "responses": {
                    "200": _json(
                        "How many items changed (idempotent: 0 when repeated), and the counts now.", "FeedChange"
                    )
                },
            }
        }
        for action, summary in (
            ("seen", "Mark feed items seen (shown in the list or bell): clears them from the unseen count"),
            ("read", "Mark feed items read (opened); reading also marks them seen"),
            ("archive", "Archive feed items: hidden from the default list, counted neither unread nor unseen"),
            ("unarchive", "Bring archived feed items back to the list"),
        )
    },
    "/users/{user_id}/feed/events": {
        "get": {
            "summary": "Live stream (server-sent events) of the user's feed: new items and the counts",
            "tags": ["users"],
            "description": "Events: hello {user_id, after}; item (id: the item id) for each new item, oldest first; "
            "counts {unread_count, unseen_count} on connect and whenever they change; expired when the user token "
            "runs out (the stream ends). Resumes after the Last-Event-ID header (or ?after=): every item missed, "
            "none twice. Needs an Authorization header (a fetch-based EventSource).",
            "parameters": [
                _query(
                    "after",
                    "Start after this item id (the newest of a list just loaded); Last-Event-ID wins over it.",
                    {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
                ),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "The id of the last item received: the stream resumes after it.",
                    "schema": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
                },
            ],
            "responses": {
                "200": {
                    "description": "text/event-stream, until the client leaves, the token expires or the worker stops.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": _json("Last-Event-ID or after is not an item id.", "Error"),
                "429": {
                    **_json("Too many live streams for this user or this worker; retry after Retry-After.", "Error"),
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                },
                "503": _json("The feed's database is unreachable; retry.", "Error"),
            },
        }
    },
    "/users/{user_id}/webhooks": {
        "get": {
            "summary": "A user's webhook endpoints (without secrets)",
            "tags": ["webhooks"],
            "responses": {
                "200": {
                    "description": "The endpoints.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "user_id": {"type": "string"},
                                    "endpoints": {"type": "array", "items": _ref("WebhookEndpoint")},
                                },
                            }
                        }
                    },
                }
            },
        },
        "post": {
            "summary": "Register a webhook endpoint; the signing secret is in the answer, once",
            "tags": ["webhooks"],
            "requestBody": _body(_ref("WebhookCreate")),
            "responses": {
                "201": {
                    "description": "The endpoint and its v1 secret or v1a public key.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    _ref("WebhookKey"),
                                    {"type": "object", "properties": {"endpoint": _ref("WebhookEndpoint")}},
                                ]
                            }
                        }
                    },
                }
            },
        },
    },
    "/webhooks/{endpoint_id}/rotate": {
        "post": {
            "summary": "A new signing key for the endpoint; the previous ones sign beside it for the grace window "
            "(CROWNSTREAM_WEBHOOK_SECRET_GRACE_S, 24 h), then no more",
            "tags": ["webhooks"],
            "description": 'The body is optional: {"signature_scheme": "v1a"} switches the endpoint to Ed25519 '
            "(or back to v1) without a gap — the old key keeps signing beside the new one for the grace window.",
            "requestBody": _body(
                {
                    "type": "object",
                    "properties": {"signature_scheme": {"type": "string", "enum": ["v1", "v1a"]}},
                },
                required=False,
            ),
            "responses": {
                "200": {
                    "description": "The new v1 secret (shown once) or v1a public key, and when the previous keys stop "
                    "signing.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    _ref("WebhookKey"),
                                    {
                                        "type": "object",
                                        "required": ["endpoint_id", "previous_secrets_sign_until"],
                                        "properties": {
                                            "endpoint_id": {"type": "string"},
                                            "previous_secrets_sign_until": {
                                                "type": ["string", "null"],
                                                "format": "date-time",
                                            },
                                        },
                                    },
                                ]
                            }
                        }
                    },
                },
                "404": _json("No such endpoint.", "Error"),
            },
        }
    },
    "/webhooks/{endpoint_id}/rate-limit": {
        "put": {
            "summary": "Limit deliveries to the endpoint to so many a second; the rest wait (none fails or spends an "
            "attempt)",
            "tags": ["webhooks"],
            "description": "Cluster-wide: one worker at a time delivers to a limited endpoint. A changed limit "
            "applies within the workers' poll interval; deliveries waiting under the old one are paced anew.",
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["per_second"],
                    "properties": {"per_second": {"type": "number", "minimum": 0.01}},
                }
            ),
            "responses": {
                "200": _json("The limit now.", "RateLimit"),
                "400": _json("per_second is not a number from 0.01 to the configured maximum.", "Error"),
                "404": _json("No such endpoint.", "Error"),
            },
        },
        "delete": {
            "summary": "Remove the endpoint's rate limit",
            "tags": ["webhooks"],
            "responses": {"200": _json("No limit now.", "RateLimit"), "404": _json("No such endpoint.", "Error")},
        },
    },
    "/webhooks/{endpoint_id}/deliveries": {
        "get": {
            "summary": "The endpoint's recent deliveries, newest first, each with every attempt",
            "tags": ["webhooks"],
            "parameters": [
                _query("limit", "How many.", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
                _query(
                    "state",
                    "Only deliveries in this state.",
                    {"type": "string", "enum": ["pending", "retrying", "sending", "sent", "dead"]},
                ),
            ],
            "responses": {
                "200": _json("Deliveries with their attempts (time, status, latency, code, error).", "Deliveries"),
                "400": _json("A bad limit or state.", "Error"),
                "404": _json("No such endpoint.", "Error"),
            },
        }
    },
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend": {
        "post": {
            "summary": "Send one delivery again (a fresh retry schedule; the same webhook-id)",
            "tags": ["webhooks"],
            "responses": {
                "202": {"description": "Due now."},
                "404": _json("No such endpoint, or no such delivery to it that can be resent now.", "Error"),
            },
        }
    },
    "/webhooks/{endpoint_id}/recover": {
        "post": {
            "summary": "Send again every delivery to the endpoint that failed or is retrying, created since a time",
            "tags": ["webhooks"],
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["since"],
                    "properties": {"since": {"type": "string", "format": "date-time"}},
                }
            ),
            "responses": {
                "202": {"description": "How many are due again."},
                "400": _json("since is not an ISO 8601 date-time with an offset.", "Error"),
                "404": _json("No such endpoint.", "Error"),
            },
        }
    },
    "/webhooks/{endpoint_id}/pause": {
        "post": {
            "summary": "Pause the endpoint: its deliveries are held in the ledger until it is resumed",
            "tags": ["webhooks"],
            "responses": {"200": {"description": "Paused."}, "404": _json("No such endpoint.", "Error")},
        }
    },
    "/webhooks/{endpoint_id}/resume": {
        "post": {
            "summary": "Resume the endpoint: what was held goes out, oldest first",
            "tags": ["webhooks"],
            "responses": {"200": {"description": "Resumed."}, "404": _json("No such endpoint.", "Error")},
        }
    },
    "/webhooks/{endpoint_id}/enable": {
        "post": {
            "summary": "Re-enable an endpoint that was disabled after failing",
            "tags": ["webhooks"],
            "responses": {"200": {"description": "Enabled."}, "404": _json("No such endpoint.", "Error")},
        }
    },
    "/users/{user_id}/unsubscribe": {
        "get": {
            "summary": "One-click unsubscribe: the confirmation page (changes nothing)",
            "tags": ["users"],
            "description": "Public: the link's own HMAC key (?key=) is the credential.",
            "parameters": [
                _query("type", "Notification type, or 'all'.", {"type": "string"}),
                _query("key", "The link's key.", {"type": "string"}),
            ],
            "responses": {
                "200": {"description": "HTML page with an Unsubscribe button."},
                "403": {"description": "HTML page: the link is not valid."},
            },
        },
        "post": {
            "summary": "One-click unsubscribe (RFC 8058): takes the type off email",
            "tags": ["users"],
            "description": "Public: the link's own HMAC key (?key=) is the credential.",
            "parameters": [
                _query("type", "Notification type, or 'all'.", {"type": "string"}),
                _query("key", "The link's key.", {"type": "string"}),
            ],
            "responses": {
                "200": {"description": "HTML page: unsubscribed."},
                "403": {"description": "HTML page: the link is not valid."},
                "422": {"description": "HTML page: the type is unknown."},
                "503": _ROUTED["503"],
            },
        },
    },
    "/notifications/scheduled/{notification_id}": {
        "get": {
            "summary": "Status of a scheduled notification: pending, sent or cancelled",
            "tags": ["ops"],
            "responses": {"200": {"description": "The schedule's status."}, **_ROUTED},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (public: counters and gauges, no user data)",
            "tags": ["ops"],
            "responses": {
                "200": {
                    "description": "Prometheus text format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness: the process serves HTTP",
            "tags": ["ops"],
            "responses": {"200": {"description": "Alive."}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: assigned, not rebalancing, tables recovered",
            "tags": ["ops"],
            "responses": {
                "200": {"description": "Ready."},
                "503": {"description": "Not ready; the checks that failed."},
            },
        }
    },
    "/ops/assignment": {
        "get": {
            "summary": "This worker's partitions (actives, standbys), lag, commit gates and flow control",
            "tags": ["ops"],
            "responses": {"200": {"description": "The worker's own view of its assignment."}},
        }
    },
    "/ops/routes": {
        "get": {
            "summary": "Every route the worker's web server serves (the live router)",
            "tags": ["ops"],
            "responses": {"200": {"description": "Method and path of each route."}},
        }
    },
}

#: What each ``@access`` policy means in the document.
SECURITY: dict[str, list[dict[str, list]]] = {
    STAFF: [{"staffToken": []}],
    USER: [{"userToken": []}, {"staffToken": []}],
    PUBLIC: [],
}
_AUTH_RESPONSES = {
    "401": _json("No credential, or an invalid or expired one: send Authorization: Bearer <token>.", "Error"),
    "403": _json("A valid credential that is not enough: another user's data, or a staff-only route.", "Error"),
}
_BODY_RESPONSES = {
    "400": _json("The body is not JSON, not UTF-8, nested too deep, or not the expected shape.", "Error"),
    "413": _json("The body is larger than the worker accepts (CROWNSTREAM_HTTP_MAX_BODY_BYTES).", "Error"),
    "415": _json("A charset other than UTF-8.", "Error"),
}
_PATH_RESPONSE = {"400": _json("A path parameter is too long or contains a control character.", "Error")}

_PARAM = re.compile(r"{([^}/]+)}")
#: Path parameters: no control characters, line or paragraph separators (web/inputs.py refuses them with 400).
_PRINTABLE = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"


def _implemented(view: View) -> list[str]:
    return [m for m in METHODS if getattr(type(view), m) is not getattr(View, m)]


def _undocumented(view: View, method: str) -> dict[str, Any]:
    doc = (type(view).__doc__ or "").strip()
    return {
        "summary": doc.splitlines()[0] if doc else type(view).__name__,
        **({"description": doc} if doc else {}),
        "responses": {"default": {"description": "See the view's module for the response."}},
    }


def _operation(path: str, view: View, method: str, has_params: bool) -> dict[str, Any]:
    operation = dict(OPERATIONS.get(path, {}).get(method) or _undocumented(view, method))
    responses = dict(operation["responses"])
    policy = policy_of(getattr(type(view), method))
    if policy is None:
        # Never on purpose: the tests fail on it. Documented as such rather than guessed.
        operation["x-crownstream-access"] = "undeclared"
    else:
        operation["security"] = SECURITY[policy]
        if policy != PUBLIC:
            responses = {**_AUTH_RESPONSES, **responses}
    if "requestBody" in operation:
        responses = {**_BODY_RESPONSES, **responses}
    if has_params or any(p.get("in") == "query" for p in operation.get("parameters", ())):
        responses = {**_PATH_RESPONSE, **responses}
    operation["responses"] = responses
    return operation


def build_document(views: dict[str, View]) -> dict[str, Any]:
    """The document for the routes in ``views`` (path -> view instance, as ``app.web.views``)."""
    paths: dict[str, Any] = {}
    for path, view in sorted(views.items()):
        item: dict[str, Any] = {}
        names = _PARAM.findall(path)
        for method in _implemented(view):
            item[method] = {
                "operationId": f"{method}{type(view).__name__}",
                **_operation(path, view, method, bool(names)),
            }
        if names:
            item["parameters"] = [
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_PARAM, "pattern": _PRINTABLE},
                }
                for n in names
            ]
        paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Crownstream worker API",
            "version": VERSION,
            "description": "Standings queries answered by any worker of the group (forwarded once to the "
            "worker that owns the tournament), users' preferences, feed and webhooks, staff "
            "overrides, health and metrics. Every operation states its security: none "
            "(public tournament data, health, metrics, the signed unsubscribe link), "
            "staffToken, or userToken (the user's own data; staffToken works there too). "
            f"Request bodies: UTF-8 JSON, at most {get_settings().http_max_body_bytes} bytes "
            f"and {get_settings().http_max_json_depth} levels deep.",
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


SECURITY_SCHEMES = {
    "staffToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The deployment's staff token (CROWNSTREAM_STAFF_TOKEN): staff actions, ops views "
        "and any user's data.",
    },
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A per-user token (JWT, HS256, sub = user id, exp required, lifetime at most "
        "CROWNSTREAM_USER_TOKEN_MAX_TTL_S) minted by the platform backend with "
        "CROWNSTREAM_USER_TOKEN_KEY (`crownstream token mint USER_ID`): that user's own "
        "preferences, feed and webhooks only.",
    },
}


@app.page("/openapi.json")
class OpenApi(View):
    """The OpenAPI document of every route this worker serves."""

    @access(PUBLIC)
    async def get(self, request: Request) -> Response:
        return self.json(build_document(dict(app.web.views)))
