"""Tiebreakers of a battle-royale stage, turned into one ascending sort key per team."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Protocol

TIEBREAKERS: tuple[str, ...] = (
    "total_points",
    "wins",
    "placement_points",
    "kill_points",
    "kills",
    "best_placement",
    "last_match_placement",
    "earliest_completion",
    # Epic's FNCS and PUBG's rulebooks compare averages over the matches played, for teams that missed a lobby:
    "average_kills",
    "average_placement",
    "average_time_alive",
    "time_alive",
    "best_game_points",
)
DEFAULT_TIEBREAKERS: tuple[str, ...] = ("total_points", "kills", "best_placement", "earliest_completion")

# Placements are at most a few hundred; a team without one (never placed, or its last match forfeited)
# sorts after every team that has one.
_NO_PLACEMENT = 1 << 30
# Completion times are canonical UTC strings ("2026-01-31T18:00:00.000000Z"), whose text order is their time
# order. A team whose total was never raised by a match (only starting points, or nothing) reached it before
# any match completed: "" sorts before every time.
_BEFORE_ANY_MATCH = ""


class Rankable(Protocol):
    """What a sort key reads of a team's standing (read-only: standings are frozen)."""

    @property
    def team_id(self) -> str: ...

    @property
    def total_points(self) -> int: ...

    @property
    def wins(self) -> int: ...

    @property
    def placement_points(self) -> int: ...

    @property
    def kill_points(self) -> int: ...

    @property
    def kills(self) -> int: ...

    @property
    def best_placement(self) -> int | None: ...

    @property
    def last_match_placement(self) -> int | None: ...

    @property
    def reached_total_at(self) -> str | None: ...

    @property
    def average_kills(self) -> Fraction | None: ...

    @property
    def exact_average_placement(self) -> Fraction | None: ...

    @property
    def average_time_alive(self) -> Fraction | None: ...

    @property
    def time_alive_s(self) -> int: ...

    @property
    def best_game_points(self) -> int | None: ...

    @property
    def disqualified(self) -> bool: ...

    @property
    def champion(self) -> bool: ...


#: Compared element by element: ints and exact fractions (ranks, negated points, placements, averages) and
#: strings (times, the team id).
SortKey = tuple[int | Fraction | str, ...]


def validate_tiebreakers(names: Iterable[str]) -> tuple[str, ...]:
    names = tuple(names)
    if not names:
        raise ValueError(f"tiebreakers is empty: give at least one of {list(TIEBREAKERS)}, usually total_points")
    for name in names:
        if name not in TIEBREAKERS:
            raise ValueError(f"unknown tiebreaker {name!r}; choose from {list(TIEBREAKERS)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"tiebreaker(s) {duplicates} listed twice; each may appear once")
    return names


_PARTS: Mapping[str, Callable[[Rankable], int | Fraction | str]] = MappingProxyType(
    {
        # More is better for counts, so they are negated; less is better for placements and times.
        "total_points": lambda s: -s.total_points,
        "wins": lambda s: -s.wins,
        "placement_points": lambda s: -s.placement_points,
        "kill_points": lambda s: -s.kill_points,
        "kills": lambda s: -s.kills,
        "best_placement": lambda s: _NO_PLACEMENT if s.best_placement is None else s.best_placement,
        "last_match_placement": lambda s: _NO_PLACEMENT if s.last_match_placement is None else s.last_match_placement,
        "earliest_completion": lambda s: _BEFORE_ANY_MATCH if s.reached_total_at is None else s.reached_total_at,
        # Averages are exact fractions: two teams with 28/6 and 14/3 kills a match are tied, as the rule means.
        "average_kills": lambda s: 0 if s.average_kills is None else -s.average_kills,
        "average_placement": lambda s: (
            _NO_PLACEMENT if s.exact_average_placement is None else s.exact_average_placement
        ),
        "average_time_alive": lambda s: 0 if s.average_time_alive is None else -s.average_time_alive,
        "time_alive": lambda s: -s.time_alive_s,
        "best_game_points": lambda s: 0 if s.best_game_points is None else -s.best_game_points,
    }
)


def sort_key_function(tiebreakers: Iterable[str]) -> Callable[[Rankable], SortKey]:
    """The key by which standings sort ascending: a smaller key ranks higher.

    A match-point champion ranks first and disqualified teams rank after all others, whatever their points;
    then the stage's tiebreakers in order. The last part is the team id, ascending: exact ties must still
    rank the same on every worker and in every rebuild, and each team's key must be unique so that the
    ranking index can find it.
    """
    parts = tuple(_PARTS[name] for name in validate_tiebreakers(tiebreakers))

    def key(s: Rankable) -> SortKey:
        return (0 if s.champion else 1, 1 if s.disqualified else 0, *(part(s) for part in parts), s.team_id)

    return key


def tie_floor(key: SortKey) -> SortKey:
    """The smallest key a team level with ``key`` on every rule can have: ``bisect_left`` of it in the sorted keys
    counts the teams ranked strictly above, so level teams share a rank (1, 2, 2, 4) instead of being told apart
    by their ids."""
    return (*key[:-1], "")


def tie_ceiling(key: SortKey) -> SortKey:
    """Above every key level with ``key`` on every rule (team ids sort below it)."""
    return (*key[:-1], "\U0010ffff")


def separating_rule(above: SortKey, below: SortKey, tiebreakers: Iterable[str]) -> str:
    """The rule that ranks ``below`` under ``above`` (the API's ``decided_by``), or "tie" if none does."""
    if above[0] != below[0]:
        return "champion"
    if above[1] != below[1]:
        return "disqualified"
    for name, a, b in zip(tiebreakers, above[2:-1], below[2:-1], strict=True):
        if a != b:
            return name
    return "tie"


def ranked(standings: Iterable[Rankable], tiebreakers: Iterable[str]) -> list[tuple[int, str, Rankable]]:
    """(rank, decided_by, standing) of standings already in order: level teams share a rank."""
    key = sort_key_function(tiebreakers)
    names = tuple(tiebreakers)
    out: list[tuple[int, str, Rankable]] = []
    previous: SortKey | None = None
    for position, standing in enumerate(standings, start=1):
        k = key(standing)
        if previous is None:
            out.append((position, "", standing))
        else:
            rule = separating_rule(previous, k, names)
            out.append((out[-1][0] if rule == "tie" else position, rule, standing))
        previous = k
    return out
