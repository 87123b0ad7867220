"""The scoring rules of one battle-royale stage, and their plain-dict form for Kafka events.

The dict form is the ``rules`` of a ``stage.configured`` event (``BattleRoyaleRules`` in the event contract):
``{"format": "battle_royale", "point_table": "algs" | [12, 9, …], "kill_points": 1, "kill_cap": null,
"tiebreakers": [...], "starting_points": {team: points}, "match_point_threshold": null}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from crownstream.standings import validators as check
from crownstream.standings.point_tables import NAMED_TABLES, PointTable
from crownstream.standings.tiebreakers import DEFAULT_TIEBREAKERS, validate_tiebreakers

_KEYS = frozenset(
    {"format", "point_table", "kill_points", "kill_cap", "tiebreakers", "starting_points", "match_point_threshold"}
)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Placement table + points per kill (optionally capped per match) + ordered tiebreakers
    + points carried in per team + an optional match-point threshold."""

    table: PointTable
    kill_points: int = 1
    kill_cap: int | None = None
    tiebreakers: tuple[str, ...] = DEFAULT_TIEBREAKERS
    starting_points: Mapping[str, int] = field(default_factory=dict)
    match_point_threshold: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.table, PointTable):
            raise ValueError(f"table must be a PointTable (PointTable.named('algs') …), got {self.table!r}")
        check.integer(self.kill_points, "kill_points", minimum=0)
        if self.kill_cap is not None:
            check.integer(self.kill_cap, "kill_cap", minimum=0)
        object.__setattr__(self, "tiebreakers", validate_tiebreakers(self.tiebreakers))
        points = {}
        for team_id, p in dict(self.starting_points).items():
            if not isinstance(team_id, str) or not team_id:
                raise ValueError(f"starting_points keys must be team ids (non-empty strings), got {team_id!r}")
            # Negative is allowed on purpose: a deduction carried into the stage.
            points[team_id] = check.integer(p, f"starting_points[{team_id!r}]")
        # Read-only: a rule set is shared by every team's computation and must not drift.
        object.__setattr__(self, "starting_points", MappingProxyType(points))
        if self.match_point_threshold is not None:
            check.integer(self.match_point_threshold, "match_point_threshold", minimum=1)

    # --- scoring --------------------------------------------------------------------------------------

    def placement_score(self, placement: int) -> int:
        return self.table.points_for(placement)

    def kill_score(self, kills: int) -> int:
        if kills < 0:
            raise ValueError(f"kills must not be negative, got {kills}")
        scoring = kills if self.kill_cap is None else min(kills, self.kill_cap)
        return scoring * self.kill_points

    def starting(self, team_id: str) -> int:
        return self.starting_points.get(team_id, 0)

    # --- plain-dict form ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "battle_royale",
            "point_table": self.table.to_value(),
            "kill_points": self.kill_points,
            "kill_cap": self.kill_cap,
            "tiebreakers": list(self.tiebreakers),
            "starting_points": dict(self.starting_points),
            "match_point_threshold": self.match_point_threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        if not isinstance(data, Mapping):
            raise ValueError(f"rules must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ValueError(f"unknown rules field(s) {unknown}; known fields: {sorted(_KEYS)}")
        fmt = data.get("format", "battle_royale")
        if fmt != "battle_royale":
            raise ValueError(f"rules format {fmt!r} is not a battle-royale stage; these rules need 'battle_royale'")
        if "point_table" not in data:
            raise ValueError(f"rules need a point_table: a name ({sorted(NAMED_TABLES)}) or a list of points")
        tiebreakers = data.get("tiebreakers")
        if tiebreakers is not None and not isinstance(tiebreakers, (list, tuple)):
            raise ValueError(f"tiebreakers must be a list of names, got {tiebreakers!r}")
        starting = data.get("starting_points") or {}
        if not isinstance(starting, Mapping):
            raise ValueError(f"starting_points must be an object of team id -> points, got {starting!r}")
        return cls(
            table=PointTable.from_value(data["point_table"]),
            kill_points=data.get("kill_points", 1),
            kill_cap=data.get("kill_cap"),
            tiebreakers=DEFAULT_TIEBREAKERS if tiebreakers is None else tuple(tiebreakers),
            starting_points=starting,
            match_point_threshold=data.get("match_point_threshold"),
        )

    @classmethod
    def named(cls, table: str, **options: Any) -> RuleSet:
        """A published table with 1 point a kill unless ``options`` say otherwise."""
        return cls(PointTable.named(table), **options)
