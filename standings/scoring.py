"""Battle-royale scoring rules: official point tables, kill points, tiebreakers — pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Points for placement 1, 2, 3, …; placements past the end of a table score 0.
POINT_TABLES: dict[str, tuple[int, ...]] = {
    # PUBG Mobile esports, 2023 onward (PMGC 2023, PMWC 2024 …): 10-6-5-4-3-2-1-1, then 0.
    "pubgm_2023": (10, 6, 5, 4, 3, 2, 1, 1),
    # PUBG Mobile esports, 2020–2022 (PMPL/PMGC 2020–2022): 15-12-10-8-6-4-2-1-1-1-1-1, then 0.
    "pubgm_2020": (15, 12, 10, 8, 6, 4, 2, 1, 1, 1, 1, 1),
    # Free Fire esports (FFWS): Booyah 12, then 9-8-7-6-5-4-3-2-1-0-0.
    "free_fire": (12, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0),
    # Apex Legends Global Series (ALGS): 12-9-7-5-4-3-3-2-2-2-1-1-1-1-1, then 0.
    "algs": (12, 9, 7, 5, 4, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1),
}

TIEBREAKERS = (
    "total_points",
    "wins",
    "placement_points",
    "kill_points",
    "kills",
    "best_placement",
    "last_match_placement",
    "earliest_completion",
)
DEFAULT_TIEBREAKERS = ("total_points", "kills", "best_placement", "earliest_completion")


@dataclass(frozen=True, slots=True)
class Rules:
    """The scoring rules of one stage."""

    placement_points: tuple[int, ...]
    kill_points: int = 1
    kill_cap: int | None = None
    tiebreakers: tuple[str, ...] = DEFAULT_TIEBREAKERS
    starting_points: Mapping[str, int] = field(default_factory=dict)
    match_point_threshold: int | None = None
    table_name: str | None = None

    def __post_init__(self) -> None:
        if any(p < 0 for p in self.placement_points):
            raise ValueError(f"placement points must not be negative: {self.placement_points}")
        if self.kill_points < 0:
            raise ValueError(f"kill_points must not be negative, got {self.kill_points}")
        if self.kill_cap is not None and self.kill_cap < 0:
            raise ValueError(f"kill_cap must not be negative, got {self.kill_cap}")
        unknown = [t for t in self.tiebreakers if t not in TIEBREAKERS]
        if unknown:
            raise ValueError(f"unknown tiebreaker(s) {unknown}; choose from {list(TIEBREAKERS)}")
        if not self.tiebreakers:
            raise ValueError("at least one tiebreaker is needed (usually total_points)")
        if self.match_point_threshold is not None and self.match_point_threshold < 1:
            raise ValueError(f"match_point_threshold must be at least 1, got {self.match_point_threshold}")

    def placement_score(self, placement: int) -> int:
        return self.placement_points[placement - 1] if placement <= len(self.placement_points) else 0

    def kill_score(self, kills: int) -> int:
        scoring = kills if self.kill_cap is None else min(kills, self.kill_cap)
        return scoring * self.kill_points

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Rules":
        """From the ``rules`` of a ``stage.configured`` event (a dict of BattleRoyaleRules' fields)."""
        table = config.get("point_table", "pubgm_2023")
        if isinstance(table, str):
            if table not in POINT_TABLES:
                raise ValueError(f"unknown point table {table!r}; named tables: {sorted(POINT_TABLES)}, "
                                 "or give the points per placement as a list")
            points, name = POINT_TABLES[table], table
        else:
            points, name = tuple(int(p) for p in table), None
        return cls(
            placement_points=points,
            kill_points=int(config.get("kill_points", 1)),
            kill_cap=config.get("kill_cap"),
            tiebreakers=tuple(config.get("tiebreakers") or DEFAULT_TIEBREAKERS),
            starting_points=dict(config.get("starting_points") or {}),
            match_point_threshold=config.get("match_point_threshold"),
            table_name=name,
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "format": "battle_royale",
            "point_table": self.table_name or list(self.placement_points),
            "kill_points": self.kill_points,
            "kill_cap": self.kill_cap,
            "tiebreakers": list(self.tiebreakers),
            "starting_points": dict(self.starting_points),
            "match_point_threshold": self.match_point_threshold,
        }


@dataclass(frozen=True, slots=True)
class TeamStanding:
    team_id: str
    total_points: int = 0
    placement_points: int = 0
    kill_points: int = 0
    kills: int = 0
    wins: int = 0
    matches_played: int = 0
    best_placement: int | None = None
    average_placement: float | None = None
    last_match_placement: int | None = None
    reached_total_at: str | None = None  # completion time (ISO, UTC) of the match that set the current total
    disqualified: bool = False
    champion: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


_INF = float("inf")


def sort_key(standing: TeamStanding, tiebreakers: Sequence[str]) -> tuple:
    """Ascending sort key: a smaller key ranks higher.

    The champion of a match-point final ranks first and disqualified teams last, whatever their points;
    the team id is the final tiebreak so that every worker computes the same order for exact ties.
    """
    parts: list[Any] = [0 if standing.champion else 1, 1 if standing.disqualified else 0]
    for name in tiebreakers:
        if name == "total_points":
            parts.append(-standing.total_points)
        elif name == "wins":
            parts.append(-standing.wins)
        elif name == "placement_points":
            parts.append(-standing.placement_points)
        elif name == "kill_points":
            parts.append(-standing.kill_points)
        elif name == "kills":
            parts.append(-standing.kills)
        elif name == "best_placement":
            parts.append(standing.best_placement if standing.best_placement is not None else _INF)
        elif name == "last_match_placement":
            parts.append(standing.last_match_placement if standing.last_match_placement is not None else _INF)
        elif name == "earliest_completion":
            # ISO-8601 UTC strings of one format sort chronologically; "~" sorts after any digit.
            parts.append(standing.reached_total_at or "~")
    parts.append(standing.team_id)
    return tuple(parts)
