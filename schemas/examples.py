"""One valid example of every event type: documentation, round-trip tests and benchmark input."""

from __future__ import annotations

import copy
from typing import Any

_AT = "2026-11-24T18:00:00Z"
_PRIZE = {"amount_minor": 150000, "currency": "USD"}

EXAMPLES: dict[str, dict[str, Any]] = {
    "stage.configured": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "name": "Grand Finals",
        "rules": {
            "format": "battle_royale",
            "point_table": "pubgm_2023",
            "kill_points": 1,
            "tiebreakers": ["total_points", "kills", "best_placement", "earliest_completion"],
        },
        "prizes": [
            {"placement": 1, "prize": _PRIZE},
            {"placement": 2, "prize": {"amount_minor": 75000, "currency": "USD"}},
        ],
    },
    "tournament.registered": {
        "tournament_id": "t-100",
        "team_id": "team-a",
        "team_name": "Alpha",
        "user_ids": ["u-1", "u-2"],
    },
    "bracket.ready": {"tournament_id": "t-100", "stage_id": "s-finals"},
    "round.paired": {
        "tournament_id": "t-100",
        "stage_id": "s-swiss",
        "round": 2,
        "source": "staff",
        "pairings": [
            {"series_id": "s-swiss-r2-m1", "team_a": "team-a", "team_b": "team-d", "best_of": 1},
            {"series_id": "s-swiss-r2-m2", "team_a": "team-b", "team_b": "team-c", "best_of": 1},
        ],
    },
    "tournament.completed": {"tournament_id": "t-100", "stage_id": "s-finals"},
    "match.scheduled": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "match_id": "m-1",
        "scheduled_at": "2026-11-25T18:00:00+01:00",
        "team_ids": ["team-a", "team-b"],
    },
    "match.started": {"tournament_id": "t-100", "stage_id": "s-finals", "match_id": "m-1"},
    "match.completed": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "match_id": "m-1",
        "revision": 1,
        "result": {
            "format": "battle_royale",
            "sequence": 1,
            "placements": [
                {"team_id": "team-a", "placement": 1, "kills": 9},
                {"team_id": "team-b", "placement": 2, "kills": 4},
            ],
        },
    },
    "match.disputed": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "match_id": "m-1",
        "team_id": "team-b",
        "reason": "kill count on the final circle is wrong",
    },
    "result.overridden": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "match_id": "m-1",
        "actor": "admin-7",
        "reason": "replay review",
        "team_id": "team-b",
        "placement": 2,
        "kills": 5,
    },
    "team.disqualified": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "team_id": "team-c",
        "from_sequence": 3,
        "actor": "admin-7",
        "reason": "cheating",
    },
    "match.forfeited": {
        "tournament_id": "t-100",
        "stage_id": "s-groups",
        "match_id": "m-9",
        "team_id": "team-d",
        "series_id": "series-9",
    },
    "invite.sent": {"team_id": "team-a", "team_name": "Alpha", "user_id": "u-9", "invited_by": "u-1"},
    "invite.accepted": {"team_id": "team-a", "user_id": "u-9"},
    "roster.changed": {"team_id": "team-a", "added": ["u-9"], "removed": ["u-2"]},
    "achievement.earned": {"user_id": "u-1", "achievement": "First Booyah", "tournament_id": "t-100"},
    "sponsor.approved": {"team_id": "team-a", "sponsor": "Energy Drink Co"},
    "promotion.started": {
        "promotion_id": "promo-1",
        "title": "Winter Cup early bird",
        "audience": {"kind": "all_users"},
    },
    "payment.verified": {
        "payment_id": "pay-1",
        "user_id": "u-1",
        "tournament_id": "t-100",
        "amount": {"amount_minor": 2500, "currency": "EUR"},
    },
    "payment.refunded": {
        "payment_id": "pay-1",
        "user_id": "u-1",
        "tournament_id": "t-100",
        "amount": {"amount_minor": 2500, "currency": "EUR"},
        "reason": "tournament cancelled",
    },
    "payout.distributed": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "team_id": "team-a",
        "placement": 1,
        "prize": _PRIZE,
    },
    "ranking.changed": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "team_id": "team-a",
        "old_rank": 3,
        "new_rank": 1,
        "points": 42,
    },
    "standings.finalized": {
        "tournament_id": "t-100",
        "stage_id": "s-finals",
        "placements": [{"team_id": "team-a", "placement": 1, "points": 42}],
    },
    "notification.scheduled": {
        "notification_id": "n-1",
        "send_at": "2026-11-25T17:45:00Z",
        "audience": {"kind": "tournament", "tournament_id": "t-100"},
        "title": "Finals start in 15 minutes",
        "body": "Join the lobby now.",
    },
    "notification.cancelled": {"notification_id": "n-1"},
    "broadcast.requested": {
        "broadcast_id": "b-1",
        "audience": {"kind": "all_users"},
        "title": "Maintenance tonight",
        "body": "Servers are down 02:00-03:00 UTC.",
    },
    "preferences.updated": {"user_id": "u-1", "preferences": {"opt_out_channels": ["discord"]}},
}


def example(event_type: str, **overrides: Any) -> dict[str, Any]:
    """A complete wire-form event of ``event_type`` (envelope included), with ``overrides`` applied."""
    body = {
        "type": event_type,
        "event_id": f"ex-{event_type}",
        "schema_version": 1,
        "occurred_at": _AT,
        # A deep copy: callers mutate nested parts (a test breaking a lobby), which must not leak into the
        # next caller's example.
        **copy.deepcopy(EXAMPLES[event_type]),
    }
    body.update(overrides)
    return body
