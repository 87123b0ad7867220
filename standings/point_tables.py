"""Placement-point tables of battle-royale esports: the published ones by name, or any custom list.

A table gives the points for placement 1, 2, 3, …; every placement past its end scores 0, so a table
never needs trailing zeros to cover a bigger lobby. Some rulebooks publish it as cumulative tiers instead
(Epic's FNCS breakdown: "Victory Royale +5, top 2 +5, top 3 +6, top 4 … top 17 +1 each", each tier earned by every
placement within it: 30-25-20-14-13-…-1); ``PointTable.from_value({"cumulative_tiers": [[1, 5], [2, 5], [3, 6],
[4, 1], …]})`` reads that form and keeps it, so the stage's rules echo what the organiser published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# PUBG Mobile esports from 2023 on (PMGC 2023, PMWC 2024, PMSL …): 10-6-5-4-3-2-1-1, then 0; 1 point a kill.
PUBGM_2023: tuple[int, ...] = (10, 6, 5, 4, 3, 2, 1, 1)
# PUBG Mobile esports 2020–2022 (PMGC 2020–2022, PMPL …): 15-12-10-8-6-4-2-1-1-1-1-1, then 0; 1 point a kill.
PUBGM_2020: tuple[int, ...] = (15, 12, 10, 8, 6, 4, 2, 1, 1, 1, 1, 1)
# Free Fire esports (FFWS): Booyah 12, then 9-8-7-6-5-4-3-2-1-0-0; 1 point a kill.
FREE_FIRE: tuple[int, ...] = (12, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0)
# Apex Legends Global Series: 12-9-7-5-4-3-3-2-2-2-1-1-1-1-1, then 0 (20-team lobbies); 1 point a kill.
ALGS: tuple[int, ...] = (12, 9, 7, 5, 4, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1)

# The names are the ones the event contract accepts in `BattleRoyaleRules.point_table`. Read-only, so no
# caller can change a published table for every stage of every worker.
NAMED_TABLES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "pubgm_2023": PUBGM_2023,
        "pubgm_2020": PUBGM_2020,
        "free_fire": FREE_FIRE,
        "algs": ALGS,
    }
)


@dataclass(frozen=True, slots=True)
class PointTable:
    """Points per placement; ``name`` is set for a published table so that it serialises by name."""

    points: tuple[int, ...]
    name: str | None = None
    tiers: tuple[tuple[int, int], ...] | None = None  # (top N, points) as published, when given as tiers

    def __post_init__(self) -> None:
        if not isinstance(self.points, tuple):
            object.__setattr__(self, "points", tuple(self.points))
        for i, p in enumerate(self.points):
            if isinstance(p, bool) or not isinstance(p, int):
                raise ValueError(f"point_table[{i}] must be an integer, got {p!r}")
            if p < 0:
                raise ValueError(
                    f"point_table[{i}] (placement {i + 1}) is {p}: placement points must not be negative; "
                    "carry a deduction as negative starting points instead"
                )
        if self.name is not None and NAMED_TABLES.get(self.name) != self.points:
            raise ValueError(f"table name {self.name!r} does not match its points {list(self.points)}")

    def points_for(self, placement: int) -> int:
        if placement < 1:
            raise ValueError(f"placement must be 1 or more, got {placement}")
        return self.points[placement - 1] if placement <= len(self.points) else 0

    def to_value(self) -> str | list[int] | dict[str, list[list[int]]]:
        """What ``point_table`` holds in a rules dict: the name of a published table, the tiers, else the list."""
        if self.name is not None:
            return self.name
        if self.tiers is not None:
            return {"cumulative_tiers": [list(t) for t in self.tiers]}
        return list(self.points)

    @classmethod
    def cumulative(cls, tiers: Sequence[Sequence[int]]) -> PointTable:
        """From tiers (top N, points): a placement earns the points of every tier whose N it is within."""
        parsed: list[tuple[int, int]] = []
        for i, tier in enumerate(tiers):
            if not isinstance(tier, (list, tuple)) or len(tier) != 2:
                raise ValueError(f"cumulative_tiers[{i}] must be [top N, points], got {tier!r}")
            top, points = tier
            for value, what in ((top, "top N"), (points, "points")):
                if isinstance(value, bool) or not isinstance(value, int) or value < (1 if what == "top N" else 0):
                    raise ValueError(
                        f"cumulative_tiers[{i}]: {what} must be an integer of at least "
                        f"{1 if what == 'top N' else 0}, got {value!r}"
                    )
            parsed.append((top, points))
        if not parsed:
            raise ValueError("cumulative_tiers is empty: give at least one [top N, points]")
        tops = [t for t, _ in parsed]
        if len(set(tops)) != len(tops):
            raise ValueError(f"cumulative_tiers lists a top N twice: {sorted(tops)}")
        deepest = max(tops)
        table = tuple(sum(p for top, p in parsed if placement <= top) for placement in range(1, deepest + 1))
        return cls(table, tiers=tuple(parsed))

    @classmethod
    def named(cls, name: str) -> PointTable:
        try:
            return cls(NAMED_TABLES[name], name)
        except KeyError:
            raise ValueError(
                f"unknown point table {name!r}; use one of {sorted(NAMED_TABLES)} "
                "or give the points for placement 1, 2, … as a list"
            ) from None

    @classmethod
    def from_value(cls, value: str | Sequence[int] | Mapping[str, Any]) -> PointTable:
        """From a rules dict's ``point_table``: a table name or the points for placement 1, 2, …"""
        if isinstance(value, str):
            return cls.named(value)
        if isinstance(value, Mapping):
            if set(value) != {"cumulative_tiers"}:
                raise ValueError(
                    f'a point_table object is {{"cumulative_tiers": [[top N, points], …]}}, got keys {sorted(value)}'
                )
            return cls.cumulative(value["cumulative_tiers"])
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError("point_table is empty: give at least the points for placement 1")
            return cls(tuple(value))
        raise ValueError(
            'point_table must be a table name, a list of integers or {"cumulative_tiers": [[top N, points], …]}, '
            f"got {type(value).__name__}"
        )
