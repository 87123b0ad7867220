"""Round-robin group standings from series results — pure, no I/O.

A team's row (W-D-L, games, points) is aggregated from its own completed series each time one of them
changes, never kept as a running sum. Ranking: points; then, among teams level on points, a head-to-head
mini-table of only the matches between those teams (points, then game difference); then overall game
difference; then game wins; then team id. Whenever a criterion separates some but not all of a tied set, each
resulting sub-group starts again from head-to-head with only its own members — the usual "subgroup" rule of
esports rulebooks, and what makes a circular tie (A beat B, B beat C, C beat A) fall through to game
difference instead of being decided by whoever is listed first.

``GroupStandings`` is updated one series at a time and re-resolves only the points-clusters the changed
series can affect; ``recompute_group`` is the from-scratch oracle it must always equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crownstream.standings import validators as check
from crownstream.standings.serialization import OMIT_DEFAULT, PAIRS, to_plain
from crownstream.standings.series import SeriesFormat, SeriesResult

STATE_VERSION = 1

# Default points per final series score, from the team's side. Odd formats: a clean or comfortable win 3, a
# win in the deciding game 2, a loss in the deciding game 1, other losses 0 — the common esports 3-2-1-0.
DEFAULT_POINTS: dict[int, dict[str, int]] = {
    1: {"1-0": 3, "0-1": 0},
    2: {"2-0": 3, "1-1": 1, "0-2": 0},
    3: {"2-0": 3, "2-1": 2, "1-2": 1, "0-2": 0},
    5: {"3-0": 3, "3-1": 3, "3-2": 2, "2-3": 1, "1-3": 0, "0-3": 0},
    7: {"4-0": 3, "4-1": 3, "4-2": 3, "4-3": 2, "3-4": 1, "2-4": 0, "1-4": 0, "0-4": 0},
}

#: The tiebreak chain after points, chosen per stage; a criterion named head_to_head_* reads a mini-table of only
#: the series among the teams still tied (a map is a game; rounds come from the games' scores).
TIEBREAKERS = (
    "head_to_head_points",
    "head_to_head_match_wins",
    "head_to_head_game_diff",
    "head_to_head_round_diff",
    "match_wins",
    "game_diff",
    "round_diff",
    "game_wins",
    "rounds_won",
    "seed",
)
DEFAULT_TIEBREAKERS = ("head_to_head_points", "head_to_head_game_diff", "game_diff", "game_wins")
CRITERIA = ("points", *TIEBREAKERS, "tie")


def _score_key(games_for: int, games_against: int) -> str:
    return f"{games_for}-{games_against}"


@dataclass(frozen=True, slots=True)
class GroupPointsRule:
    """Points a team earns for each possible final score of its series (one series format per group)."""

    best_of: int = 3
    points: tuple[tuple[str, int], ...] = field(default=(), metadata=PAIRS)  # {"2-0": 3, …}; a mapping is
    # accepted; empty = the defaults
    tiebreakers: tuple[str, ...] = field(default=DEFAULT_TIEBREAKERS, metadata=OMIT_DEFAULT)
    seeds: tuple[tuple[str, int], ...] = field(default=(), metadata={**PAIRS, **OMIT_DEFAULT})  # for "seed"

    def __post_init__(self) -> None:
        fmt = SeriesFormat(self.best_of)
        raw = self.points.items() if isinstance(self.points, Mapping) else self.points
        table = dict(raw) if raw else dict(DEFAULT_POINTS[self.best_of])
        possible = [_score_key(a, b) for a, b in fmt.final_scores()]
        unknown = [k for k in table if k not in possible]
        if unknown:
            raise ValueError(
                f"points for {unknown} cannot happen in a best-of-{self.best_of}; its final scores are {possible}"
            )
        missing = [k for k in possible if k not in table]
        if missing:
            raise ValueError(
                f"points for best-of-{self.best_of} are missing {missing}; give a value for every final "
                f"score {possible}"
            )
        for key, value in table.items():
            check.integer(value, f"points for {key}", 0)
        object.__setattr__(self, "points", tuple((k, table[k]) for k in possible))
        # The chain is checked after the points, whose errors say more about a stage that cannot be scored.
        tiebreakers = tuple(self.tiebreakers)
        unknown = [t for t in tiebreakers if t not in TIEBREAKERS]
        if unknown or len(set(tiebreakers)) != len(tiebreakers):
            raise ValueError(f"tiebreakers {list(tiebreakers)} are not valid: each once, from {list(TIEBREAKERS)}")
        object.__setattr__(self, "tiebreakers", tiebreakers)
        seeds = dict(self.seeds.items() if isinstance(self.seeds, Mapping) else self.seeds)
        for team, seed in seeds.items():
            check.text(team, "a team id of the seeds")
            check.integer(seed, f"the seed of {team!r}", 1)
        if "seed" in tiebreakers and not seeds:
            raise ValueError('the "seed" tiebreaker needs "seeds": {team_id: seed (1 = best)}')
        object.__setattr__(self, "seeds", tuple(sorted(seeds.items())))

    @property
    def format(self) -> SeriesFormat:
        return SeriesFormat(self.best_of)

    @property
    def table(self) -> dict[str, int]:
        return dict(self.points)

    def points_for(self, result: SeriesResult, team_id: str) -> int:
        table = dict(self.points)
        if result.forfeited_by is not None:
            # A forfeit scores as the format's clean win/loss whatever the forfeit_score policy recorded as the
            # game tally: under "played" a series forfeited at 1-0 would otherwise look up a score ("1-0") that no
            # finished best-of-3 can have.
            k = self.format.wins_needed
            return table[_score_key(0, k) if result.forfeited_by == team_id else _score_key(k, 0)]
        key = _score_key(*result.games_for(team_id))
        if key not in table:
            raise ValueError(
                f"series {result.series_id!r} ended {key} for {team_id!r}, which is not a final score "
                f"of a best-of-{self.best_of}; expected one of {list(table)}"
            )
        return table[key]

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> GroupPointsRule:
        # Also reads the "rules" object of a stage.configured event (format "series_group").
        data = check.mapping(data, "a group points rule", ("format", "best_of", "points", "tiebreakers", "seeds"))
        if data.get("format", "series_group") != "series_group":
            raise ValueError(f"a group points rule has format 'series_group', got {data['format']!r}")
        best_of = data.get("best_of", 3)
        if isinstance(best_of, bool) or not isinstance(best_of, int):
            raise ValueError(f"best_of must be one of {sorted(DEFAULT_POINTS)}, got {best_of!r}")
        points = data.get("points")
        if points is not None and not isinstance(points, Mapping):
            raise ValueError(
                f'points must be a mapping like {{"2-0": 3, "2-1": 2, "1-2": 1, "0-2": 0}}, got {points!r}'
            )
        tiebreakers = data.get("tiebreakers") or DEFAULT_TIEBREAKERS
        if not isinstance(tiebreakers, (list, tuple)):
            raise ValueError(f"tiebreakers must be a list of names from {list(TIEBREAKERS)}, got {tiebreakers!r}")
        seeds = data.get("seeds") or {}
        if not isinstance(seeds, Mapping):
            raise ValueError(f"seeds must be {{team_id: seed}}, got {seeds!r}")
        return cls(best_of, tuple((points or {}).items()), tuple(tiebreakers), tuple(seeds.items()))


@dataclass(frozen=True, slots=True)
class TeamRecord:
    team_id: str
    played: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    game_wins: int = 0
    game_losses: int = 0
    points: int = 0
    rounds_won: int = 0
    rounds_lost: int = 0

    @property
    def game_diff(self) -> int:
        return self.game_wins - self.game_losses

    @property
    def round_diff(self) -> int:
        return self.rounds_won - self.rounds_lost


@dataclass(frozen=True, slots=True)
class StandingRow:
    rank: int
    team_id: str
    played: int
    wins: int
    draws: int
    losses: int
    game_wins: int
    game_losses: int
    points: int
    decided_by: str  # the criterion that put this team below the one ranked just above it; "" for rank 1; "tie"
    # when none did (the two share a rank)
    rounds_won: int = 0
    rounds_lost: int = 0

    @property
    def game_diff(self) -> int:
        return self.game_wins - self.game_losses

    @property
    def round_diff(self) -> int:
        return self.rounds_won - self.rounds_lost

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "team_id": self.team_id,
            "played": self.played,
            "wins": self.wins,
            "draws": self.draws,
            "losses": self.losses,
            "game_wins": self.game_wins,
            "game_losses": self.game_losses,
            "game_diff": self.game_diff,
            "points": self.points,
            "decided_by": self.decided_by,
            "rounds_won": self.rounds_won,
            "rounds_lost": self.rounds_lost,
            "round_diff": self.rounds_won - self.rounds_lost,
        }


def team_record(team_id: str, results: Iterable[SeriesResult], rule: GroupPointsRule) -> TeamRecord:
    """A team's row from its completed series (others are skipped)."""
    played = wins = draws = losses = gw = gl = points = rw = rl = 0
    for r in results:
        if not r.completed:
            continue
        won, lost = r.games_for(team_id)
        rounds = r.rounds_for(team_id)
        if rounds is not None:  # a series whose games reported no score adds no rounds
            rw += rounds[0]
            rl += rounds[1]
        played += 1
        gw += won
        gl += lost
        points += rule.points_for(r, team_id)
        if r.winner is None:
            draws += 1
        elif r.winner == team_id:
            wins += 1
        else:
            losses += 1
    return TeamRecord(team_id, played, wins, draws, losses, gw, gl, points, rw, rl)


# --- tie resolution ----------------------------------------------------------------------------------


# Where each head-to-head criterion sits in a team's mini-table row.
_MINI = {
    "head_to_head_points": 0,
    "head_to_head_game_diff": 1,
    "head_to_head_round_diff": 2,
    "head_to_head_match_wins": 3,
}


def _mini_table(
    tied: frozenset[str], among: Iterable[SeriesResult], rule: GroupPointsRule
) -> dict[str, tuple[int, int, int, int]]:
    """(points, game difference, round difference, series won) of each tied team, counting only its series against
    other tied teams."""
    table = {t: [0, 0, 0, 0] for t in tied}
    for r in among:
        for team in (r.team_a, r.team_b):
            won, lost = r.games_for(team)
            rounds = r.rounds_for(team)
            table[team][0] += rule.points_for(r, team)
            table[team][1] += won - lost
            table[team][2] += 0 if rounds is None else rounds[0] - rounds[1]
            table[team][3] += r.winner == team
    return {t: (p, gd, rd, w) for t, (p, gd, rd, w) in table.items()}


def order_tied(
    tied: Sequence[str],
    records: Mapping[str, TeamRecord],
    between: Callable[[frozenset[str]], Iterable[SeriesResult]],
    rule: GroupPointsRule,
    label: str,
) -> list[tuple[str, str]]:
    """Order teams level on points. Returns (team, criterion that placed it below the previous team); the first
    team gets ``label`` (what separated the whole set from the teams above it).

    ``between(teams)`` yields the completed series whose two teams are both in ``teams``."""
    members = frozenset(tied)
    if len(members) == 1:
        return [(tied[0], label)]
    mini: dict[str, tuple[int, int, int, int]] | None = None

    def h2h() -> dict[str, tuple[int, int, int, int]]:
        nonlocal mini
        if mini is None:
            mini = _mini_table(members, between(members), rule)
        return mini

    seeds = dict(rule.seeds)
    overall: dict[str, Callable[[str], int]] = {
        "match_wins": lambda t: records[t].wins,
        "game_diff": lambda t: records[t].game_diff,
        "round_diff": lambda t: records[t].round_diff,
        "game_wins": lambda t: records[t].game_wins,
        "rounds_won": lambda t: records[t].rounds_won,
        "seed": lambda t: -seeds.get(t, 1 << 30),  # a better (lower) seed first; an unseeded team last
    }
    for name in rule.tiebreakers:
        if name in _MINI:
            index = _MINI[name]
            values = {t: h2h()[t][index] for t in members}
        else:
            values = {t: overall[name](t) for t in members}
        levels = sorted(set(values.values()), reverse=True)
        if len(levels) == 1:
            continue  # this criterion cannot separate anyone here; try the next one
        out: list[tuple[str, str]] = []
        for i, level in enumerate(levels):
            part = sorted(t for t in members if values[t] == level)
            # Each sub-group restarts from head-to-head with only its own members: a mini-table over the
            # larger set would count results against teams that are no longer tied with them.
            out += order_tied(part, records, between, rule, label if i == 0 else name)
        return out
    # No rule of the stage separates them: they share a rank ("tie"), listed by team id only so that every
    # worker lists them alike. A real organiser breaks such a tie with a tiebreaker match, which arrives as a result
    # like any other and decides it properly (or with a "seed" rule).
    ordered = sorted(members)
    return [(ordered[0], label)] + [(t, "tie") for t in ordered[1:]]


def _rows(ordered: Iterable[tuple[str, str]], records: Mapping[str, TeamRecord]) -> tuple[StandingRow, ...]:
    rows: list[StandingRow] = []
    for position, (team, decided_by) in enumerate(ordered, start=1):
        r = records[team]
        rank = rows[-1].rank if decided_by == "tie" and rows else position
        rows.append(
            StandingRow(
                rank,
                team,
                r.played,
                r.wins,
                r.draws,
                r.losses,
                r.game_wins,
                r.game_losses,
                r.points,
                "" if position == 1 else decided_by,
                r.rounds_won,
                r.rounds_lost,
            )
        )
    return tuple(rows)


def _validate(result: SeriesResult, teams: Iterable[str], rule: GroupPointsRule, group_id: str) -> None:
    members = set(teams)
    strangers = [t for t in (result.team_a, result.team_b) if t not in members]
    if strangers:
        raise ValueError(
            f"series {result.series_id!r} involves {strangers}, who are not in group {group_id!r} "
            f"{sorted(members)}; register the team in the group or route the series to its own group"
        )
    if result.best_of != rule.best_of:
        raise ValueError(
            f"series {result.series_id!r} is a best-of-{result.best_of} but group {group_id!r} scores "
            f"best-of-{rule.best_of} series; configure the group's points for that format"
        )
    if result.completed:
        rule.points_for(result, result.team_a)  # a score the rule cannot price is refused here, not at ranking time


def _check_teams(teams: Iterable[str], group_id: str) -> tuple[str, ...]:
    teams = tuple(teams)
    for t in teams:
        check.text(t, f"a team id of group {group_id!r}")
    if len(set(teams)) != len(teams):
        raise ValueError(f"group {group_id!r} lists a team twice: {list(teams)}")
    if len(teams) < 2:
        raise ValueError(f"group {group_id!r} needs at least two teams, got {list(teams)}")
    return teams


def recompute_group(
    teams: Iterable[str], results: Iterable[SeriesResult], rule: GroupPointsRule, group_id: str = "group"
) -> tuple[StandingRow, ...]:
    """The standings from scratch: the oracle ``GroupStandings`` must always equal. Non-completed series are
    skipped; one series id given twice with different content is an error (which one counts is ambiguous)."""
    teams = _check_teams(teams, group_id)
    latest: dict[str, SeriesResult] = {}
    for r in results:
        _validate(r, teams, rule, group_id)
        if r.series_id in latest and latest[r.series_id] != r:
            raise ValueError(f"series {r.series_id!r} is given twice with different results; pass only its current one")
        latest[r.series_id] = r
    done = [r for r in latest.values() if r.completed]
    records = {t: team_record(t, [r for r in done if t in (r.team_a, r.team_b)], rule) for t in teams}

    def between(members: frozenset[str]) -> list[SeriesResult]:
        return [r for r in done if r.team_a in members and r.team_b in members]

    ordered: list[tuple[str, str]] = []
    for i, points in enumerate(sorted({rec.points for rec in records.values()}, reverse=True)):
        tied = sorted(t for t in teams if records[t].points == points)
        ordered += order_tied(tied, records, between, rule, "" if i == 0 else "points")
    return _rows(ordered, records)


# --- incremental -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankChange:
    team_id: str
    old_rank: int
    new_rank: int


@dataclass(frozen=True, slots=True)
class GroupChange:
    status: str  # applied | removed | unchanged
    reason: str = ""
    rank_changes: tuple[RankChange, ...] = ()

    @property
    def applied(self) -> bool:
        return self.status != "unchanged"


@dataclass(slots=True)
class GroupStandings:
    group_id: str
    teams: tuple[str, ...]
    rule: GroupPointsRule = field(default_factory=GroupPointsRule)
    _results: dict[str, SeriesResult] = field(default_factory=dict)  # completed series only
    _by_team: dict[str, set[str]] = field(default_factory=dict)
    _pairs: dict[frozenset[str], set[str]] = field(default_factory=dict)
    _records: dict[str, TeamRecord] = field(default_factory=dict)
    _clusters: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # points -> resolved order

    def __post_init__(self) -> None:
        check.text(self.group_id, "group_id")
        self.teams = _check_teams(self.teams, self.group_id)
        if not isinstance(self.rule, GroupPointsRule):
            raise ValueError(
                f"rule must be a GroupPointsRule (use GroupPointsRule.from_dict for a dict), "
                f"got {type(self.rule).__name__}"
            )
        for t in self.teams:
            self._by_team.setdefault(t, set())
            self._records[t] = TeamRecord(t)

    # --- queries ------------------------------------------------------------------------------------

    def results(self) -> tuple[SeriesResult, ...]:
        return tuple(self._results[k] for k in sorted(self._results))

    def record(self, team_id: str) -> TeamRecord:
        return self._records[team_id]

    def standings(self) -> tuple[StandingRow, ...]:
        ordered: list[tuple[str, str]] = []
        for i, points in enumerate(sorted({r.points for r in self._records.values()}, reverse=True)):
            cluster = self._clusters.get(points)
            if cluster is None:
                tied = sorted(t for t in self.teams if self._records[t].points == points)
                cluster = tuple(order_tied(tied, self._records, self._between, self.rule, "points"))
                self._clusters[points] = cluster
            ordered += [(cluster[0][0], "" if i == 0 else "points"), *cluster[1:]]
        return _rows(ordered, self._records)

    def _between(self, members: frozenset[str]) -> list[SeriesResult]:
        found: list[SeriesResult] = []
        ordered = sorted(members)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                found += (self._results[sid] for sid in self._pairs.get(frozenset((a, b)), ()))
        return found

    # --- updates ------------------------------------------------------------------------------------

    def update(self, result: SeriesResult) -> GroupChange:
        """Fold the current state of one series in. A series that is no longer completed (a correction
        reopened it) leaves the table; one that never completed is not in it."""
        _validate(result, self.teams, self.rule, self.group_id)
        old = self._results.get(result.series_id)
        if result.completed and old == result:
            return GroupChange("unchanged", "already counted with this result")
        if not result.completed and old is None:
            return GroupChange(
                "unchanged", f"series {result.series_id!r} is {result.status}; only completed series count"
            )
        before = {row.team_id: row.rank for row in self.standings()}
        touched = {result.team_a, result.team_b}
        if old is not None:
            touched |= {old.team_a, old.team_b}
            self._forget(old)
        if result.completed:
            self._results[result.series_id] = result
            self._by_team[result.team_a].add(result.series_id)
            self._by_team[result.team_b].add(result.series_id)
            self._pairs.setdefault(frozenset((result.team_a, result.team_b)), set()).add(result.series_id)
        # Only the clusters that hold a touched team, before or after, can order differently: another cluster's
        # order depends on its own members' records and the series among them, neither of which changed.
        stale = {self._records[t].points for t in touched}
        for t in touched:
            self._records[t] = team_record(t, (self._results[s] for s in self._by_team[t]), self.rule)
        stale |= {self._records[t].points for t in touched}
        for points in stale:
            self._clusters.pop(points, None)
        after = self.standings()
        changes = tuple(
            RankChange(row.team_id, before[row.team_id], row.rank) for row in after if before[row.team_id] != row.rank
        )
        if result.completed:
            return GroupChange("applied", "", changes)
        return GroupChange(
            "removed", f"series {result.series_id!r} is {result.status} again; its old result no longer counts", changes
        )

    def _forget(self, old: SeriesResult) -> None:
        del self._results[old.series_id]
        self._by_team[old.team_a].discard(old.series_id)
        self._by_team[old.team_b].discard(old.series_id)
        self._pairs.get(frozenset((old.team_a, old.team_b)), set()).discard(old.series_id)

    # --- persistence --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly state (the facts only; records and rankings are rebuilt on load)."""
        return {
            "version": STATE_VERSION,
            "group_id": self.group_id,
            "teams": list(self.teams),
            "rule": self.rule.to_dict(),
            "results": [r.to_dict() for r in self.results()],
        }

    @classmethod
    def from_dict(cls, data: Any) -> GroupStandings:
        data = check.mapping(data, "stored group standings", ("version", "group_id", "teams", "rule", "results"))
        if data.get("version") != STATE_VERSION:
            raise ValueError(
                f"stored group standings have version {data.get('version')!r}; this code reads version "
                f"{STATE_VERSION} — migrate the stored state or deploy the matching code"
            )
        teams = check.required(data, "teams", "stored group standings")
        if not isinstance(teams, list):
            raise ValueError(f"stored group standings need 'teams' as a list of team ids, got {teams!r}")
        group = cls(
            check.required(data, "group_id", "stored group standings"),
            tuple(teams),
            GroupPointsRule.from_dict(check.required(data, "rule", "stored group standings")),
        )
        for raw in data.get("results", []):
            group.update(SeriesResult.from_dict(raw))
        return group
