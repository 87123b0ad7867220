"""Points per game of a battle-royale stage: what one match gives one team (after overrides, forfeits and
disqualification), and a team's standing aggregated from its own match lines only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

from crownstream.standings.br_inputs import Disqualification, LobbyRow, MatchResult, Override
from crownstream.standings.match_point import Entry
from crownstream.standings.rules import RuleSet
from crownstream.standings.serialization import OMIT_DEFAULT, from_plain, to_plain


class LineStatus(StrEnum):
    COUNTED = "counted"
    FORFEIT = "forfeit"  # played, scores 0
    VOIDED = "voided"  # at or after the team's disqualification: scores 0


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one match gives one team, after overrides, forfeits and disqualification."""

    match_id: str
    sequence: int
    completed_at: str
    placement: int | None  # None: forfeited without a placement in the lobby
    kills: int
    status: LineStatus
    placement_points: int
    kill_points: int
    overridden: bool
    time_alive_s: int | None = field(default=None, metadata=OMIT_DEFAULT)  # as reported; None: not reported

    @property
    def points(self) -> int:
        return self.placement_points + self.kill_points

    @property
    def counted(self) -> bool:
        return self.status is LineStatus.COUNTED

    def to_dict(self) -> dict[str, Any]:
        # The derived total too, for the readers of the per-team match lines (the API, the ops tools).
        return {**to_plain(self), "points": self.points}


def contribution(
    rules: RuleSet,
    result: MatchResult,
    row: LobbyRow | None,
    override: Override | None,
    forfeited: bool,
    disqualification: Disqualification | None,
) -> Contribution | None:
    """The line of one team in one match, or None if the team was not in it."""
    if override is not None:
        placement: int | None = override.placement
        kills = override.kills if override.kills is not None else (row.kills if row is not None else 0)
    elif row is not None:
        placement, kills = row.placement, row.kills
    elif forfeited:
        placement, kills = None, 0
    else:
        return None
    if forfeited:
        # A forfeit is the last word on points even over a pinned placement: the team gave the match up.
        status = LineStatus.FORFEIT
    elif disqualification is not None and result.sequence >= disqualification.from_sequence:
        status = LineStatus.VOIDED
    else:
        status = LineStatus.COUNTED
    counted = status is LineStatus.COUNTED
    return Contribution(
        match_id=result.match_id,
        sequence=result.sequence,
        completed_at=result.completed_at,
        placement=placement,
        kills=kills if status is not LineStatus.FORFEIT else 0,
        status=status,
        placement_points=rules.placement_score(placement) if counted and placement is not None else 0,
        kill_points=rules.kill_score(kills) if counted else 0,
        overridden=override is not None,
        time_alive_s=row.time_alive_s if row is not None and status is not LineStatus.FORFEIT else None,
    )


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
    reached_total_at: str | None = None  # completion of the match that set the current total; None: before any
    starting_points: int = 0
    disqualified: bool = False
    champion: bool = False
    # The exact sums behind the averages, for tiebreakers that compare averages (a float could tie two teams whose
    # averages differ, or split two that are equal).
    counted_matches: int = 0  # matches that scored (not forfeited or voided)
    placement_sum: int = 0
    placed_matches: int = 0
    time_alive_s: int = 0
    timed_matches: int = 0  # counted matches that reported a time alive
    best_game_points: int | None = None

    @property
    def average_kills(self) -> Fraction | None:
        return Fraction(self.kills, self.counted_matches) if self.counted_matches else None

    @property
    def exact_average_placement(self) -> Fraction | None:
        return Fraction(self.placement_sum, self.placed_matches) if self.placed_matches else None

    @property
    def average_time_alive(self) -> Fraction | None:
        return Fraction(self.time_alive_s, self.timed_matches) if self.timed_matches else None

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TeamStanding:
        return from_plain(cls, data, what="a team standing")


def match_order(c: Contribution) -> tuple[int, str, str]:
    return (c.sequence, c.completed_at, c.match_id)


class TeamTotals:
    """The running sums behind a team's standing. Adding a match line is O(1), so a new lobby costs the same
    whatever the number of matches already played; a line replaced or taken away (a correction, an override, a
    forfeit, a disqualification) is not subtracted: the totals are built again from the team's lines."""

    __slots__ = (
        "best",
        "best_points",
        "counted",
        "kill_points",
        "kills",
        "last",
        "placed",
        "placement_points",
        "placement_sum",
        "played",
        "reached",
        "time_alive",
        "timed",
        "wins",
    )

    def __init__(self) -> None:
        self.placement_points = self.kill_points = self.kills = self.wins = 0
        self.played = self.placement_sum = self.placed = 0
        self.counted = self.time_alive = self.timed = 0
        self.best_points: int | None = None
        self.best: int | None = None
        self.last: Contribution | None = None
        self.reached: Contribution | None = None

    @classmethod
    def of(cls, lines: Iterable[Contribution]) -> TeamTotals:
        totals = cls()
        for line in lines:
            totals.add(line)
        return totals

    def add(self, c: Contribution) -> None:
        self.played += 1
        self.placement_points += c.placement_points
        self.kill_points += c.kill_points
        order = (c.sequence, c.completed_at, c.match_id)
        if self.last is None or order > match_order(self.last):
            self.last = c
        # Points are never negative, so the total is reached in the last match that added any.
        if c.placement_points + c.kill_points > 0 and (self.reached is None or order > match_order(self.reached)):
            self.reached = c
        # Forfeited and voided lines count as played and nothing else.
        if c.status is LineStatus.COUNTED:
            self.counted += 1
            self.kills += c.kills
            self.best_points = c.points if self.best_points is None else max(self.best_points, c.points)
            if c.time_alive_s is not None:
                self.time_alive += c.time_alive_s
                self.timed += 1
            if c.placement is not None:
                self.wins += c.placement == 1
                self.placement_sum += c.placement
                self.placed += 1
                self.best = c.placement if self.best is None else min(self.best, c.placement)

    def standing(self, team_id: str, rules: RuleSet, *, disqualified: bool, champion: bool) -> TeamStanding:
        starting = rules.starting(team_id)
        last = self.last
        return TeamStanding(
            team_id=team_id,
            total_points=starting + self.placement_points + self.kill_points,
            placement_points=self.placement_points,
            kill_points=self.kill_points,
            kills=self.kills,
            wins=self.wins,
            matches_played=self.played,
            best_placement=self.best,
            average_placement=self.placement_sum / self.placed if self.placed else None,
            last_match_placement=last.placement if last is not None and last.counted else None,
            reached_total_at=self.reached.completed_at if self.reached is not None else None,
            starting_points=starting,
            disqualified=disqualified,
            champion=champion,
            counted_matches=self.counted,
            placement_sum=self.placement_sum,
            placed_matches=self.placed,
            time_alive_s=self.time_alive,
            timed_matches=self.timed,
            best_game_points=self.best_points,
        )


def aggregate(
    team_id: str, rules: RuleSet, lines: Iterable[Contribution], *, disqualified: bool, champion: bool
) -> TeamStanding:
    """A team's standing from its own match lines only."""
    return TeamTotals.of(lines).standing(team_id, rules, disqualified=disqualified, champion=champion)


def match_entries(lines: Iterable[Contribution]) -> list[Entry]:
    return [Entry(c.sequence, c.match_id, c.counted and c.placement == 1, c.points) for c in lines]
