"""A battle-royale stage's standings, maintained incrementally and always equal to a full recompute.

State is the *current results* — one lobby result per match (highest revision wins), staff overrides,
disqualifications and forfeits — never running sums. When a result arrives, only the teams it touches are
re-aggregated, each from its own matches (O(matches of that team)), and moved in a sorted ranking index
(O(log n)); a duplicate or stale revision changes nothing. Rank changes of the teams a mover pushes up or
down are reported too, because a rank is relative. ``recompute`` is the from-scratch oracle.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from crownstream.standings.scoring import Rules, TeamStanding, sort_key


@dataclass(frozen=True, slots=True)
class LobbyRow:
    team_id: str
    placement: int
    kills: int = 0


@dataclass(frozen=True, slots=True)
class MatchResult:
    match_id: str
    revision: int
    sequence: int
    completed_at: str  # ISO-8601 UTC
    rows: tuple[LobbyRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"match_id": self.match_id, "revision": self.revision, "sequence": self.sequence,
                "completed_at": self.completed_at,
                "rows": [[r.team_id, r.placement, r.kills] for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MatchResult":
        return cls(data["match_id"], int(data["revision"]), int(data["sequence"]), data["completed_at"],
                   tuple(LobbyRow(t, int(p), int(k)) for t, p, k in data["rows"]))


@dataclass(frozen=True, slots=True)
class Override:
    """A staff decision pinning a team's placement (and optionally kills) in a match, over any revision."""

    event_id: str
    match_id: str
    team_id: str
    placement: int
    kills: int | None
    actor: str
    reason: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Override":
        return cls(**{name: data[name] for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class Disqualification:
    event_id: str
    team_id: str
    from_sequence: int
    actor: str
    reason: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Disqualification":
        return cls(**{name: data[name] for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class RankChange:
    team_id: str
    old_rank: int | None
    new_rank: int
    old_points: int | None
    new_points: int


@dataclass(frozen=True, slots=True)
class Change:
    status: str  # applied | duplicate | stale
    rank_changes: tuple[RankChange, ...] = ()

    @property
    def applied(self) -> bool:
        return self.status == "applied"


@dataclass(frozen=True, slots=True)
class _Effective:
    """What a team's row in one match counts for, after overrides, forfeits and disqualification."""

    sequence: int
    completed_at: str
    placement: int | None  # None: forfeited (played, no placement)
    kills: int
    placement_points: int
    kill_points: int
    scores: bool  # False once disqualified


def effective_row(rules: Rules, result: MatchResult, row: LobbyRow | None, override: Override | None,
                  forfeited: bool, dq: Disqualification | None) -> _Effective | None:
    if override is not None:
        placement = override.placement
        kills = override.kills if override.kills is not None else (row.kills if row else 0)
    elif row is not None:
        placement, kills = row.placement, row.kills
    else:
        return None
    scores = dq is None or result.sequence < dq.from_sequence
    if forfeited:
        return _Effective(result.sequence, result.completed_at, None, 0, 0, 0, scores)
    if not scores:
        return _Effective(result.sequence, result.completed_at, placement, kills, 0, 0, False)
    return _Effective(result.sequence, result.completed_at, placement, kills,
                      rules.placement_score(placement), rules.kill_score(kills), True)


def aggregate(team_id: str, rules: Rules, rows: Iterable[_Effective], disqualified: bool,
              champion: bool) -> TeamStanding:
    total = rules.starting_points.get(team_id, 0)
    pp = kp = kills = wins = played = 0
    placements: list[int] = []
    last: _Effective | None = None
    reached: _Effective | None = None
    for r in rows:
        played += 1
        if last is None or r.sequence > last.sequence:
            last = r
        if r.placement is not None and r.scores:
            placements.append(r.placement)
            wins += r.placement == 1
            kills += r.kills
        pp += r.placement_points
        kp += r.kill_points
        if r.placement_points + r.kill_points > 0 and (reached is None or r.sequence > reached.sequence):
            reached = r
    return TeamStanding(
        team_id=team_id,
        total_points=total + pp + kp,
        placement_points=pp,
        kill_points=kp,
        kills=kills,
        wins=wins,
        matches_played=played,
        best_placement=min(placements) if placements else None,
        average_placement=round(sum(placements) / len(placements), 3) if placements else None,
        last_match_placement=last.placement if last else None,
        reached_total_at=reached.completed_at if reached else None,
        disqualified=disqualified,
        champion=champion,
    )


@dataclass
class Leaderboard:
    rules: Rules
    matches: dict[str, MatchResult] = field(default_factory=dict)
    overrides: dict[tuple[str, str], Override] = field(default_factory=dict)
    audit: dict[str, dict[str, Override]] = field(default_factory=dict)  # team -> event_id -> override
    disqualifications: dict[str, Disqualification] = field(default_factory=dict)
    forfeits: set[tuple[str, str]] = field(default_factory=set)
    _team_matches: dict[str, set[str]] = field(default_factory=dict)
    _rows: dict[tuple[str, str], LobbyRow] = field(default_factory=dict)  # (match, team) -> row
    _standings: dict[str, TeamStanding] = field(default_factory=dict)
    _keys: dict[str, tuple] = field(default_factory=dict)
    _index: SortedList = field(default_factory=SortedList)
    _champion: str | None = None

    # --- queries --------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    def rank_of(self, team_id: str) -> int | None:
        key = self._keys.get(team_id)
        return None if key is None else self._index.bisect_left(key) + 1

    def team(self, team_id: str) -> TeamStanding | None:
        return self._standings.get(team_id)

    def standings(self, offset: int = 0, limit: int | None = None) -> list[tuple[int, TeamStanding]]:
        stop = None if limit is None else offset + limit
        return [(offset + i + 1, self._standings[key[-1]])
                for i, key in enumerate(self._index.islice(offset, stop))]

    @property
    def champion(self) -> str | None:
        return self._champion

    def team_matches(self, team_id: str) -> list[dict[str, Any]]:
        """Per-match breakdown of a team (what each match counted for), in match order."""
        out = []
        for match_id in self._team_matches.get(team_id, ()):
            result = self.matches[match_id]
            eff = self._effective(match_id, team_id)
            if eff is None:
                continue
            out.append({"match_id": match_id, "sequence": result.sequence, "revision": result.revision,
                        "placement": eff.placement, "kills": eff.kills, "placement_points": eff.placement_points,
                        "kill_points": eff.kill_points, "overridden": (match_id, team_id) in self.overrides,
                        "forfeited": (match_id, team_id) in self.forfeits, "counted": eff.scores})
        return sorted(out, key=lambda m: m["sequence"])

    def audit_trail(self, team_id: str) -> list[dict[str, Any]]:
        return sorted((o.to_dict() for o in self.audit.get(team_id, {}).values()), key=lambda o: (o["at"], o["event_id"]))

    # --- updates --------------------------------------------------------------------------------------

    def apply_result(self, result: MatchResult) -> Change:
        current = self.matches.get(result.match_id)
        if current is not None and current.revision >= result.revision:
            return Change("duplicate" if current.revision == result.revision else "stale")
        touched = {r.team_id for r in result.rows}
        if current is not None:
            touched |= {r.team_id for r in current.rows}
            for row in current.rows:
                self._rows.pop((result.match_id, row.team_id), None)
                self._team_matches.get(row.team_id, set()).discard(result.match_id)
        self.matches[result.match_id] = result
        for row in result.rows:
            self._rows[(result.match_id, row.team_id)] = row
            self._team_matches.setdefault(row.team_id, set()).add(result.match_id)
        # An override of a team absent from this revision still pins that team into the match.
        for (match_id, team_id) in self.overrides:
            if match_id == result.match_id:
                self._team_matches.setdefault(team_id, set()).add(match_id)
                touched.add(team_id)
        return self._refresh(touched)

    def apply_override(self, override: Override) -> Change:
        if override.event_id in self.audit.get(override.team_id, {}):
            return Change("duplicate")
        self.audit.setdefault(override.team_id, {})[override.event_id] = override
        key = (override.match_id, override.team_id)
        current = self.overrides.get(key)
        # The latest decision wins whatever order the events arrive in.
        if current is not None and (current.at, current.event_id) > (override.at, override.event_id):
            return Change("applied")
        self.overrides[key] = override
        if override.match_id in self.matches:
            self._team_matches.setdefault(override.team_id, set()).add(override.match_id)
        return self._refresh({override.team_id})

    def disqualify(self, dq: Disqualification) -> Change:
        current = self.disqualifications.get(dq.team_id)
        if current is not None and (current.from_sequence, current.event_id) <= (dq.from_sequence, dq.event_id):
            return Change("duplicate")
        self.disqualifications[dq.team_id] = dq
        return self._refresh({dq.team_id})

    def forfeit(self, match_id: str, team_id: str) -> Change:
        if (match_id, team_id) in self.forfeits:
            return Change("duplicate")
        self.forfeits.add((match_id, team_id))
        return self._refresh({team_id})

    # --- internals ------------------------------------------------------------------------------------

    def _effective(self, match_id: str, team_id: str) -> _Effective | None:
        result = self.matches.get(match_id)
        if result is None:
            return None
        return effective_row(self.rules, result, self._rows.get((match_id, team_id)),
                             self.overrides.get((match_id, team_id)), (match_id, team_id) in self.forfeits,
                             self.disqualifications.get(team_id))

    def _team_rows(self, team_id: str) -> list[_Effective]:
        rows = (self._effective(m, team_id) for m in self._team_matches.get(team_id, ()))
        return [r for r in rows if r is not None]

    def _find_champion(self) -> str | None:
        threshold = self.rules.match_point_threshold
        if threshold is None:
            return None
        totals: dict[str, int] = {}
        for result in sorted(self.matches.values(), key=lambda m: m.sequence):
            effs = {}
            winners = []
            for team_id in self._teams_in(result.match_id):
                eff = self._effective(result.match_id, team_id)
                if eff is None:
                    continue
                effs[team_id] = eff
                if eff.placement == 1 and eff.scores:
                    winners.append(team_id)
            for team_id in sorted(winners):
                # Eligible only from the match *after* the one in which the threshold was reached.
                before = self.rules.starting_points.get(team_id, 0) + totals.get(team_id, 0)
                if before >= threshold:
                    return team_id
            for team_id, eff in effs.items():
                totals[team_id] = totals.get(team_id, 0) + eff.placement_points + eff.kill_points
        return None

    def _teams_in(self, match_id: str) -> set[str]:
        result = self.matches[match_id]
        teams = {r.team_id for r in result.rows}
        teams |= {t for (m, t) in self.overrides if m == match_id}
        return teams

    def _refresh(self, touched: set[str]) -> Change:
        champion = self._find_champion()
        if champion != self._champion:
            touched |= {t for t in (champion, self._champion) if t is not None}
            self._champion = champion
        old_keys = {t: self._keys.get(t) for t in touched}
        old_points = {t: (self._standings[t].total_points if t in self._standings else None) for t in touched}
        old_ranks = {t: self.rank_of(t) for t in touched}
        for team_id in touched:
            if old_keys[team_id] is not None:
                self._index.remove(old_keys[team_id])
            rows = self._team_rows(team_id)
            if not rows and team_id not in self.rules.starting_points:
                # Corrected out of every match it was in: it leaves the standings, as a recompute would show.
                self._keys.pop(team_id, None)
                self._standings.pop(team_id, None)
                continue
            standing = aggregate(team_id, self.rules, rows, team_id in self.disqualifications,
                                 team_id == self._champion)
            key = sort_key(standing, self.rules.tiebreakers)
            self._index.add(key)
            self._keys[team_id] = key
            self._standings[team_id] = standing
        return Change("applied", tuple(self._rank_changes(touched, old_keys, old_ranks, old_points)))

    def _rank_changes(self, touched, old_keys, old_ranks, old_points) -> list[RankChange]:
        # Teams not touched keep their relative order, so an untouched team's rank moves only by how many
        # touched teams crossed it: compare how many touched keys sort before it, before and after.
        changes: list[RankChange] = []
        present = [t for t in touched if t in self._keys]
        for t in present:
            new_rank = self.rank_of(t)
            new_points = self._standings[t].total_points
            if old_ranks[t] != new_rank or old_points[t] != new_points:
                changes.append(RankChange(t, old_ranks[t], new_rank, old_points[t], new_points))
        before = sorted(k for k in old_keys.values() if k is not None)
        after = sorted(self._keys[t] for t in present)
        positions = [r for r in old_ranks.values() if r is not None] + [self.rank_of(t) for t in present]
        if not positions:
            return changes
        lo, hi = max(min(positions) - 1, 0), min(max(positions), len(self._index))
        if any(old_ranks[t] is None for t in present) or len(present) < len(touched):
            hi = len(self._index)  # a team entering or leaving shifts everyone below it
        for key in self._index.islice(lo, hi):
            team_id = key[-1]
            if team_id in touched:
                continue
            shift = bisect_left(after, key) - bisect_left(before, key)
            if shift:
                new_rank = self._index.bisect_left(key) + 1
                points = self._standings[team_id].total_points
                changes.append(RankChange(team_id, new_rank - shift, new_rank, points, points))
        return sorted(changes, key=lambda c: (c.new_rank, c.team_id))


def recompute(rules: Rules, matches: Iterable[MatchResult], overrides: Iterable[Override] = (),
              disqualifications: Iterable[Disqualification] = (), forfeits: Iterable[tuple[str, str]] = (),
              only_matches: set[str] | None = None) -> list[TeamStanding]:
    """Standings from scratch, in rank order: the oracle for the incremental board, the operator's rebuild,
    and the subset-of-matches query (``only_matches``)."""
    current: dict[str, MatchResult] = {}
    for m in matches:
        if m.match_id not in current or m.revision > current[m.match_id].revision:
            current[m.match_id] = m
    if only_matches is not None:
        current = {k: v for k, v in current.items() if k in only_matches}
    pinned: dict[tuple[str, str], Override] = {}
    for o in overrides:
        k = (o.match_id, o.team_id)
        if k not in pinned or (pinned[k].at, pinned[k].event_id) < (o.at, o.event_id):
            pinned[k] = o
    dqs: dict[str, Disqualification] = {}
    for d in disqualifications:
        if d.team_id not in dqs or (d.from_sequence, d.event_id) < (dqs[d.team_id].from_sequence, dqs[d.team_id].event_id):
            dqs[d.team_id] = d
    forfeited = set(forfeits)
    per_team: dict[str, list[_Effective]] = {}
    for result in current.values():
        rows = {r.team_id: r for r in result.rows}
        for team_id in set(rows) | {t for (m, t) in pinned if m == result.match_id}:
            eff = effective_row(rules, result, rows.get(team_id), pinned.get((result.match_id, team_id)),
                                (result.match_id, team_id) in forfeited, dqs.get(team_id))
            if eff is not None:
                per_team.setdefault(team_id, []).append(eff)
    board = Leaderboard(rules)
    board.matches, board.overrides, board.disqualifications, board.forfeits = current, pinned, dqs, forfeited
    board._rows = {(r_id, row.team_id): row for r_id, res in current.items() for row in res.rows}
    board._team_matches = {}
    for (m, t) in list(board._rows) + list(pinned):
        if m in current:
            board._team_matches.setdefault(t, set()).add(m)
    champion = board._find_champion()
    for team_id in rules.starting_points:
        per_team.setdefault(team_id, [])
    standings = [aggregate(t, rules, rows, t in dqs, t == champion) for t, rows in per_team.items()]
    return sorted(standings, key=lambda s: sort_key(s, rules.tiebreakers))
