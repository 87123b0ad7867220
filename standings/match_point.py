"""Match-point finals (ALGS finals, Free Fire "Champion Rush").

A team whose total reaches the threshold becomes eligible *after* the match in which it reached it; the first
eligible team to win a match (placement 1) is the champion. "First" and "after" follow the stage's match
sequence numbers, never the order in which results arrived, since the stream may deliver match 5 before
match 4. Matches with the same sequence (parallel lobbies) are one step: a team's total before a match is the
sum over matches with a strictly smaller sequence.

A team's eligibility for each of its wins depends only on its own results, which is what lets the
leaderboard keep the candidate wins of each team up to date at the cost of that team's matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import groupby
from typing import NamedTuple


class Entry(NamedTuple):
    """One team's line in one match, as match-point rules see it."""

    sequence: int
    match_id: str
    won: bool  # placement 1, and the result counted (not forfeited, not voided by a disqualification)
    points: int  # placement + kill points this match gave the team


class Win(NamedTuple):
    """A win by a team that was eligible when it played: a candidate for the title. Sorts by match order."""

    sequence: int
    match_id: str
    team_id: str


def eligible_wins(team_id: str, threshold: int, starting: int, entries: Iterable[Entry]) -> list[Win]:
    """The wins of one team in matches it entered already at or above the threshold."""
    wins: list[Win] = []
    total = starting
    for _, group in groupby(sorted(entries), key=lambda e: e.sequence):
        step = list(group)
        eligible = total >= threshold
        for e in step:
            if e.won and eligible:
                wins.append(Win(e.sequence, e.match_id, team_id))
        total += sum(e.points for e in step)
    return wins


def find_champion(
    threshold: int,
    starting_points: Mapping[str, int],
    matches: Iterable[tuple[int, str, Mapping[str, Entry]]],
    excluded: Iterable[str] = (),
) -> str | None:
    """From scratch: play the matches ``(sequence, match_id, {team: entry})`` in order and return the first
    eligible winner, skipping ``excluded`` (disqualified) teams. Used by the rebuild and as the oracle of the
    leaderboard's incremental bookkeeping, so it deliberately walks the whole stage instead of reusing
    ``eligible_wins``."""
    excluded = set(excluded)
    totals: dict[str, int] = dict(starting_points)
    for _, group in groupby(sorted(matches, key=lambda m: (m[0], m[1])), key=lambda m: m[0]):
        step = list(group)
        candidates = sorted(
            (match_id, team_id)
            for _, match_id, lines in step
            for team_id, e in lines.items()
            if e.won and team_id not in excluded and totals.get(team_id, 0) >= threshold
        )
        if candidates:
            return candidates[0][1]
        for _, _, lines in step:
            for team_id, e in lines.items():
                totals[team_id] = totals.get(team_id, 0) + e.points
    return None
