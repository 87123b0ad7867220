"""Battle-royale standings of one stage, kept incrementally and always equal to a full recompute.

What is stored is the *current inputs* — the effective lobby result of each match (highest revision wins),
staff overrides, disqualifications, forfeits — and, derived from them, each team's contribution per match.
Nothing is a running sum: when a match changes, each team in it gets that one contribution recomputed and
its aggregate rebuilt from its own contributions (O(matches of that team)), then moves in a sorted ranking
index (O(log n)). A correction therefore cannot leave a trace of the result it replaced, and the cost of an
event does not grow with the number of teams in the stage. ``recompute`` builds the same standings from
scratch; it is the tests' oracle and the operator's rebuild.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from sortedcontainers import SortedKeyList, SortedList

from crownstream.standings.match_point import Entry, Win, eligible_wins, find_champion
from crownstream.standings.rules import RuleSet
from crownstream.standings.tiebreakers import sort_key_function

# --- inputs -----------------------------------------------------------------------------------------------


def utc_timestamp(value: str | datetime) -> str:
    """Canonical UTC text of an aware time ("2026-01-31T18:00:00.000000Z"): one format, so that comparing
    the text compares the times — which "earliest completion" relies on."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time; send e.g. '2026-01-31T18:00:00Z'") from None
    if not isinstance(value, datetime):
        raise ValueError(f"a time must be an ISO-8601 string or a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"time {value.isoformat()} has no timezone; add one ('Z' or '+00:00')")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _check_id(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _check_int(value: Any, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer of at least {minimum}, got {value!r}")


def _as_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass(frozen=True, slots=True)
class LobbyRow:
    team_id: str
    placement: int
    kills: int = 0

    def __post_init__(self) -> None:
        _check_id(self.team_id, "team_id")
        _check_int(self.placement, f"placement of team {self.team_id!r}", 1)
        _check_int(self.kills, f"kills of team {self.team_id!r}", 0)


@dataclass(frozen=True, slots=True)
class MatchResult:
    """A whole lobby's result. (stage_id, match_id, revision) identifies it; ``sequence`` orders the matches
    of the stage, whatever order their results arrive in."""

    stage_id: str
    match_id: str
    revision: int
    sequence: int
    completed_at: str
    rows: tuple[LobbyRow, ...]

    def __post_init__(self) -> None:
        _check_id(self.stage_id, "stage_id")
        _check_id(self.match_id, "match_id")
        _check_int(self.revision, f"match {self.match_id}: revision", 1)
        _check_int(self.sequence, f"match {self.match_id}: sequence", 1)
        object.__setattr__(self, "completed_at", utc_timestamp(self.completed_at))
        rows = tuple(self.rows)
        seen: set[str] = set()
        for row in rows:
            if not isinstance(row, LobbyRow):
                raise ValueError(f"match {self.match_id}: rows must be LobbyRow, got {row!r}")
            if row.team_id in seen:
                raise ValueError(f"match {self.match_id}: team {row.team_id!r} has two rows; send one per team")
            seen.add(row.team_id)
        object.__setattr__(self, "rows", rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage_id": self.stage_id,
            "match_id": self.match_id,
            "revision": self.revision,
            "sequence": self.sequence,
            "completed_at": self.completed_at,
            "rows": [_as_dict(r) for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MatchResult":
        try:
            rows = tuple(LobbyRow(r["team_id"], r["placement"], r.get("kills", 0)) for r in data["rows"])
            return cls(data["stage_id"], data["match_id"], data["revision"], data["sequence"],
                       data["completed_at"], rows)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a match result {dict(data)!r}: missing or malformed {exc}") from None


@dataclass(frozen=True, slots=True)
class Override:
    """A staff decision pinning a team's placement (and, if given, kills) in one match. It holds against any
    revision of that match, later ones included; of several for the same team and match the latest
    (``at``, then ``override_id``) holds, so the outcome does not depend on arrival order."""

    override_id: str
    match_id: str
    team_id: str
    placement: int
    kills: int | None
    actor: str
    reason: str
    at: str

    def __post_init__(self) -> None:
        for name in ("override_id", "match_id", "team_id", "actor", "reason"):
            _check_id(getattr(self, name), f"override {name}")
        _check_int(self.placement, "override placement", 1)
        if self.kills is not None:
            _check_int(self.kills, "override kills", 0)
        object.__setattr__(self, "at", utc_timestamp(self.at))

    @property
    def precedence(self) -> tuple[str, str]:
        return (self.at, self.override_id)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Override":
        return cls(**_pick(cls, data, optional={"kills"}))


@dataclass(frozen=True, slots=True)
class Disqualification:
    """From match ``from_sequence`` on, the team's results score nothing and it ranks after every team that is
    not disqualified. Of several for one team the earliest (``from_sequence``, then id) holds."""

    disqualification_id: str
    team_id: str
    from_sequence: int
    actor: str
    reason: str
    at: str

    def __post_init__(self) -> None:
        for name in ("disqualification_id", "team_id", "actor", "reason"):
            _check_id(getattr(self, name), f"disqualification {name}")
        _check_int(self.from_sequence, "disqualification from_sequence", 1)
        object.__setattr__(self, "at", utc_timestamp(self.at))

    @property
    def precedence(self) -> tuple[int, str]:
        return (self.from_sequence, self.disqualification_id)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Disqualification":
        return cls(**_pick(cls, data))


@dataclass(frozen=True, slots=True)
class Forfeit:
    """The team forfeits the match: it scores 0 there but the match counts as played."""

    match_id: str
    team_id: str

    def __post_init__(self) -> None:
        _check_id(self.match_id, "forfeit match_id")
        _check_id(self.team_id, "forfeit team_id")


def _pick(cls: type, data: Mapping[str, Any], optional: set[str] = frozenset()) -> dict[str, Any]:
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in data and n not in optional]
    if missing:
        raise ValueError(f"{cls.__name__} is missing field(s) {missing} in {dict(data)!r}")
    return {n: data.get(n) for n in names}


StageInput = MatchResult | Override | Disqualification | Forfeit

# --- derived ----------------------------------------------------------------------------------------------


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

    @property
    def points(self) -> int:
        return self.placement_points + self.kill_points

    @property
    def counted(self) -> bool:
        return self.status is LineStatus.COUNTED

    def to_dict(self) -> dict[str, Any]:
        return {**_as_dict(self), "status": self.status.value, "points": self.points}


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

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TeamStanding":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _match_order(c: Contribution) -> tuple[int, str, str]:
    return (c.sequence, c.completed_at, c.match_id)


def aggregate(
    team_id: str, rules: RuleSet, lines: Iterable[Contribution], *, disqualified: bool, champion: bool
) -> TeamStanding:
    """A team's standing from its own match lines only."""
    starting = rules.starting(team_id)
    pp = kp = kills = wins = played = placement_sum = placed = 0
    best: int | None = None
    last: Contribution | None = None
    reached: Contribution | None = None
    for c in lines:
        played += 1
        pp += c.placement_points
        kp += c.kill_points
        if last is None or _match_order(c) > _match_order(last):
            last = c
        # Points are never negative, so the total is reached in the last match that added any.
        if c.points > 0 and (reached is None or _match_order(c) > _match_order(reached)):
            reached = c
        # Forfeited and voided lines count as played and nothing else.
        if c.counted:
            kills += c.kills
            if c.placement is not None:
                wins += c.placement == 1
                placement_sum += c.placement
                placed += 1
                best = c.placement if best is None else min(best, c.placement)
    return TeamStanding(
        team_id=team_id,
        total_points=starting + pp + kp,
        placement_points=pp,
        kill_points=kp,
        kills=kills,
        wins=wins,
        matches_played=played,
        best_placement=best,
        average_placement=placement_sum / placed if placed else None,
        last_match_placement=last.placement if last is not None and last.counted else None,
        reached_total_at=reached.completed_at if reached is not None else None,
        starting_points=starting,
        disqualified=disqualified,
        champion=champion,
    )


def _entries(lines: Iterable[Contribution]) -> list[Entry]:
    return [Entry(c.sequence, c.match_id, c.counted and c.placement == 1, c.points) for c in lines]


# --- what an update reports -------------------------------------------------------------------------------


class Status(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # seen before: nothing changed
    STALE = "stale"  # older than what holds (lower revision, superseded decision): no effect on the standings


@dataclass(frozen=True, slots=True)
class RankChange:
    """A team whose rank or points changed. ``None`` ranks/points: the team entered or left the standings."""

    team_id: str
    old_rank: int | None
    new_rank: int | None
    old_points: int | None
    new_points: int | None

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, slots=True)
class Change:
    status: Status
    changed: tuple[str, ...] = ()  # teams whose standing changed in any way
    rank_changes: tuple[RankChange, ...] = ()  # ordered by new rank; teams that left last
    champion: str | None = None
    champion_changed: bool = False
    dirty_matches: tuple[str, ...] = ()  # per-(stage, match) states to persist again
    dirty_teams: tuple[str, ...] = ()  # per-(stage, team) states to persist again

    @property
    def applied(self) -> bool:
        return self.status is Status.APPLIED


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One staff override as it was received: who, why, when, and what it changed."""

    override: Override
    before: dict[str, Any] | None  # the team's line in the match when it arrived; None: no line (or no result) yet
    after: dict[str, Any] | None
    pinned: bool  # False: a later override already held when this one arrived

    def to_dict(self) -> dict[str, Any]:
        return {**self.override.to_dict(), "before": self.before, "after": self.after, "pinned": self.pinned}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AuditEntry":
        return cls(Override.from_dict(data), data.get("before"), data.get("after"), bool(data.get("pinned")))


def _line_view(c: Contribution | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"placement": c.placement, "kills": c.kills, "points": c.points, "status": c.status.value}


# --- the leaderboard --------------------------------------------------------------------------------------

SNAPSHOT_VERSION = 1


class Leaderboard:
    """Standings of one battle-royale stage. Not thread-safe: one stage belongs to one stream partition."""

    def __init__(self, rules: RuleSet, stage_id: str, displaced_top: int | None = None) -> None:
        """``displaced_top``: report teams that only *moved because others moved* (their points unchanged)
        when their old or new rank is within the top ``displaced_top``; None reports all of them. In a
        1000-team stage one lobby result shifts most ranks, so reporting all makes every event cost the size
        of the stage; teams whose own points changed are always reported."""
        _check_id(stage_id, "stage_id")
        if displaced_top is not None and displaced_top < 0:
            raise ValueError(f"displaced_top must be None or >= 0, got {displaced_top}")
        self.rules = rules
        self.stage_id = stage_id
        self.displaced_top = displaced_top
        self._key = sort_key_function(rules.tiebreakers)
        # Inputs.
        self._results: dict[str, MatchResult] = {}
        self._rows: dict[str, dict[str, LobbyRow]] = {}  # match -> team -> row of the current revision
        self._overrides: dict[str, dict[str, Override]] = {}  # match -> team -> override that holds
        self._forfeits: dict[str, set[str]] = {}  # match -> teams
        self._disqualifications: dict[str, Disqualification] = {}
        self._audit: dict[str, list[AuditEntry]] = {}  # team -> overrides received
        self._override_ids: set[str] = set()
        # Derived.
        self._lines: dict[str, dict[str, Contribution]] = {}  # team -> match -> line
        self._standings: dict[str, TeamStanding] = {}
        self._index: SortedKeyList = SortedKeyList(key=self._key)
        self._wins: SortedList = SortedList()  # eligible wins (match-point stages), in match order
        self._team_wins: dict[str, list[Win]] = {}
        self._champion: str | None = None
        self._commit(set(rules.starting_points))

    # --- queries ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    @property
    def champion(self) -> str | None:
        return self._champion

    def team(self, team_id: str) -> TeamStanding | None:
        return self._standings.get(team_id)

    def rank_of(self, team_id: str) -> int | None:
        standing = self._standings.get(team_id)
        return None if standing is None else self._index.bisect_key_left(self._key(standing)) + 1

    def standings(self, offset: int = 0, limit: int | None = None) -> list[tuple[int, TeamStanding]]:
        """A page of (rank, standing), best first."""
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError(f"offset and limit must not be negative, got offset={offset}, limit={limit}")
        stop = None if limit is None else offset + limit
        return [(offset + i + 1, s) for i, s in enumerate(self._index.islice(offset, stop))]

    def team_matches(self, team_id: str) -> list[Contribution]:
        """What each match gave the team, in match order."""
        return sorted(self._lines.get(team_id, {}).values(), key=_match_order)

    def audit_trail(self, team_id: str) -> list[AuditEntry]:
        return sorted(self._audit.get(team_id, ()), key=lambda e: e.override.precedence)

    def standings_over(self, match_ids: Iterable[str], *, include_starting_points: bool = False) -> list[TeamStanding]:
        """Standings counting only the given matches (the query API's ``?matches=``), from scratch.
        Points carried in belong to no match, so they are left out unless asked for."""
        return recompute(
            self.rules, self.results(), self.overrides(), self.disqualifications(), self.forfeits(),
            only_matches=set(match_ids), include_starting_points=include_starting_points,
        )

    # The current inputs, e.g. for ``recompute``.
    def results(self) -> list[MatchResult]:
        return list(self._results.values())

    def overrides(self) -> list[Override]:
        return [o for by_team in self._overrides.values() for o in by_team.values()]

    def disqualifications(self) -> list[Disqualification]:
        return list(self._disqualifications.values())

    def forfeits(self) -> list[Forfeit]:
        return [Forfeit(m, t) for m, teams in self._forfeits.items() for t in sorted(teams)]

    # --- updates ------------------------------------------------------------------------------------------

    def apply(self, item: StageInput) -> Change:
        if isinstance(item, MatchResult):
            return self.apply_result(item)
        if isinstance(item, Override):
            return self.apply_override(item)
        if isinstance(item, Disqualification):
            return self.disqualify(item)
        if isinstance(item, Forfeit):
            return self.forfeit(item)
        raise TypeError(f"cannot apply {type(item).__name__}; expected a MatchResult, Override, "
                        "Disqualification or Forfeit")

    def apply_result(self, result: MatchResult) -> Change:
        if result.stage_id != self.stage_id:
            raise ValueError(f"result of match {result.match_id} is for stage {result.stage_id!r}, "
                             f"not this leaderboard's stage {self.stage_id!r}; route it to its own stage")
        match_id = result.match_id
        current = self._results.get(match_id)
        if current is not None and result.revision <= current.revision:
            return Change(Status.DUPLICATE if result.revision == current.revision else Status.STALE,
                          champion=self._champion)
        # The new revision replaces the old one wholesale: teams it drops lose this match, and the match may
        # even have moved in the sequence, so every team of either revision is recomputed.
        touched = self._teams_in(match_id)
        self._results[match_id] = result
        self._rows[match_id] = {row.team_id: row for row in result.rows}
        touched |= self._teams_in(match_id)
        for team_id in touched:
            self._set_line(team_id, match_id)
        return self._commit(touched, dirty_matches=(match_id,))

    def apply_override(self, override: Override) -> Change:
        if override.override_id in self._override_ids:
            return Change(Status.DUPLICATE, champion=self._champion)
        self._override_ids.add(override.override_id)
        match_id, team_id = override.match_id, override.team_id
        held = self._overrides.get(match_id, {}).get(team_id)
        before = _line_view(self._lines.get(team_id, {}).get(match_id))
        pinned = held is None or override.precedence > held.precedence
        if pinned:
            self._overrides.setdefault(match_id, {})[team_id] = override
            if match_id in self._results:
                self._set_line(team_id, match_id)
        after = _line_view(self._lines.get(team_id, {}).get(match_id)) if pinned else before
        self._audit.setdefault(team_id, []).append(AuditEntry(override, before, after, pinned))
        if not pinned:
            # Kept in the audit trail, but a later decision holds.
            return Change(Status.STALE, champion=self._champion, dirty_teams=(team_id,))
        return self._commit({team_id}, dirty_matches=(match_id,), dirty_teams=(team_id,))

    def disqualify(self, disqualification: Disqualification) -> Change:
        team_id = disqualification.team_id
        held = self._disqualifications.get(team_id)
        if held is not None and held.disqualification_id == disqualification.disqualification_id:
            return Change(Status.DUPLICATE, champion=self._champion)
        if held is not None and held.precedence <= disqualification.precedence:
            return Change(Status.STALE, champion=self._champion)
        self._disqualifications[team_id] = disqualification
        for match_id in list(self._lines.get(team_id, ())):
            self._set_line(team_id, match_id)
        return self._commit({team_id}, dirty_teams=(team_id,))

    def forfeit(self, forfeit: Forfeit) -> Change:
        match_id, team_id = forfeit.match_id, forfeit.team_id
        teams = self._forfeits.setdefault(match_id, set())
        if team_id in teams:
            return Change(Status.DUPLICATE, champion=self._champion)
        teams.add(team_id)
        if match_id in self._results:
            self._set_line(team_id, match_id)
        return self._commit({team_id}, dirty_matches=(match_id,))

    # --- state for key-value tables -----------------------------------------------------------------------

    def match_state(self, match_id: str) -> dict[str, Any] | None:
        """Everything stored about one match (key: stage, match), as JSON-friendly values."""
        result = self._results.get(match_id)
        overrides = self._overrides.get(match_id, {})
        forfeits = self._forfeits.get(match_id, set())
        if result is None and not overrides and not forfeits:
            return None
        return {
            "result": result.to_dict() if result is not None else None,
            "overrides": [overrides[t].to_dict() for t in sorted(overrides)],
            "forfeits": sorted(forfeits),
        }

    def team_state(self, team_id: str) -> dict[str, Any] | None:
        """Everything stored about one team (key: stage, team). Its standing is derived, so not stored."""
        dq = self._disqualifications.get(team_id)
        audit = self.audit_trail(team_id)
        if dq is None and not audit:
            return None
        return {"disqualification": dq.to_dict() if dq is not None else None, "audit": [e.to_dict() for e in audit]}

    def snapshot(self) -> dict[str, Any]:
        match_ids = set(self._results) | set(self._overrides) | set(self._forfeits)
        team_ids = set(self._disqualifications) | set(self._audit)
        matches = {m: s for m in sorted(match_ids) if (s := self.match_state(m)) is not None}
        teams = {t: s for t in sorted(team_ids) if (s := self.team_state(t)) is not None}
        return {"version": SNAPSHOT_VERSION, "stage_id": self.stage_id, "rules": self.rules.to_dict(),
                "matches": matches, "teams": teams}

    @classmethod
    def restore(cls, snapshot: Mapping[str, Any]) -> "Leaderboard":
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {snapshot.get('version')!r} is not {SNAPSHOT_VERSION}; "
                             "rebuild the stage from its events instead")
        return cls.from_states(RuleSet.from_dict(snapshot["rules"]), snapshot["stage_id"],
                               snapshot.get("matches", {}), snapshot.get("teams", {}))

    @classmethod
    def from_states(cls, rules: RuleSet, stage_id: str, matches: Mapping[str, Mapping[str, Any]],
                    teams: Mapping[str, Mapping[str, Any]]) -> "Leaderboard":
        """From the per-match and per-team states of ``match_state`` / ``team_state``. Costs a full rebuild,
        which is what recovering a stage is."""
        board = cls(rules, stage_id)
        for match_id, state in matches.items():
            if state.get("result") is not None:
                result = MatchResult.from_dict(state["result"])
                board._results[match_id] = result
                board._rows[match_id] = {row.team_id: row for row in result.rows}
            for data in state.get("overrides", ()):
                o = Override.from_dict(data)
                board._overrides.setdefault(o.match_id, {})[o.team_id] = o
            if state.get("forfeits"):
                board._forfeits[match_id] = set(state["forfeits"])
        for team_id, state in teams.items():
            if state.get("disqualification") is not None:
                board._disqualifications[team_id] = Disqualification.from_dict(state["disqualification"])
            entries = [AuditEntry.from_dict(e) for e in state.get("audit", ())]
            if entries:
                board._audit[team_id] = entries
                board._override_ids.update(e.override.override_id for e in entries)
        touched: set[str] = set(rules.starting_points)
        for match_id in board._results:
            for team_id in board._teams_in(match_id):
                board._set_line(team_id, match_id)
                touched.add(team_id)
        board._commit(touched)
        return board

    # --- internals ----------------------------------------------------------------------------------------

    def _teams_in(self, match_id: str) -> set[str]:
        if match_id not in self._results:
            return set()
        return set(self._rows[match_id]) | set(self._overrides.get(match_id, ())) | self._forfeits.get(match_id, set())

    def _set_line(self, team_id: str, match_id: str) -> None:
        result = self._results.get(match_id)
        line = None
        if result is not None:
            line = contribution(
                self.rules, result, self._rows[match_id].get(team_id),
                self._overrides.get(match_id, {}).get(team_id), team_id in self._forfeits.get(match_id, ()),
                self._disqualifications.get(team_id),
            )
        lines = self._lines.setdefault(team_id, {})
        if line is None:
            lines.pop(match_id, None)
            if not lines:
                del self._lines[team_id]
        else:
            lines[match_id] = line

    def _refresh_wins(self, team_id: str) -> None:
        threshold = self.rules.match_point_threshold
        if threshold is None:
            return
        for win in self._team_wins.pop(team_id, ()):
            self._wins.remove(win)
        if team_id in self._disqualifications:
            return  # a disqualified team cannot take the title
        wins = eligible_wins(team_id, threshold, self.rules.starting(team_id),
                             _entries(self._lines.get(team_id, {}).values()))
        if wins:
            self._team_wins[team_id] = wins
            self._wins.update(wins)

    def _commit(self, touched: set[str], dirty_matches: tuple[str, ...] = (),
                dirty_teams: tuple[str, ...] = ()) -> Change:
        for team_id in touched:
            self._refresh_wins(team_id)
        champion = self._wins[0].team_id if self._wins else None
        champion_changed = champion != self._champion
        if champion_changed:
            touched = touched | {t for t in (champion, self._champion) if t is not None}
            self._champion = champion

        old: dict[str, TeamStanding] = {}
        new: dict[str, TeamStanding] = {}
        for team_id in touched:
            before = self._standings.get(team_id)
            lines = self._lines.get(team_id)
            if lines is None and team_id not in self.rules.starting_points:
                # Corrected out of every match: a recompute would not list it either.
                after = None
            else:
                after = aggregate(team_id, self.rules, (lines or {}).values(),
                                  disqualified=team_id in self._disqualifications, champion=team_id == champion)
            if before != after:
                if before is not None:
                    old[team_id] = before
                if after is not None:
                    new[team_id] = after

        old_ranks = {t: self._index.bisect_key_left(self._key(s)) + 1 for t, s in old.items()}
        for team_id, standing in old.items():
            self._index.remove(standing)
            del self._standings[team_id]
        for team_id, standing in new.items():
            self._index.add(standing)
            self._standings[team_id] = standing

        changed = set(old) | set(new)
        return Change(
            Status.APPLIED,
            changed=tuple(sorted(changed)),
            rank_changes=tuple(self._rank_changes(old, new, old_ranks)),
            champion=champion,
            champion_changed=champion_changed,
            dirty_matches=dirty_matches,
            dirty_teams=dirty_teams,
        )

    def _rank_changes(self, old: dict[str, TeamStanding], new: dict[str, TeamStanding],
                      old_ranks: dict[str, int]) -> list[RankChange]:
        """Rank/points changes of the moved teams and of every team they pushed up or down.

        An unmoved team keeps its order relative to the other unmoved teams, so its rank shifts only by how
        many moved teams sort before it now compared with before. That count is constant between two
        consecutive old/new keys of moved teams; only the stretches where it is non-zero are read from the
        index, so the cost follows the number of teams reported, not the size of the stage.
        """
        changes: list[RankChange] = []
        for team_id in old.keys() | new.keys():
            before, after = old.get(team_id), new.get(team_id)
            new_rank = self.rank_of(team_id) if after is not None else None
            old_rank = old_ranks.get(team_id)
            old_points = before.total_points if before is not None else None
            new_points = after.total_points if after is not None else None
            if old_rank != new_rank or old_points != new_points:
                changes.append(RankChange(team_id, old_rank, new_rank, old_points, new_points))

        old_keys = sorted(self._key(s) for s in old.values())
        new_keys = sorted(self._key(s) for s in new.values())
        bounds = sorted(old_keys + new_keys)
        for i in range(len(bounds)):
            lo = bounds[i]
            hi = bounds[i + 1] if i + 1 < len(bounds) else None
            shift = bisect_right(new_keys, lo) - bisect_right(old_keys, lo)
            if shift == 0 or lo == hi:
                continue
            start = self._index.bisect_key_right(lo)
            stop = len(self._index) if hi is None else self._index.bisect_key_left(hi)
            if self.displaced_top is not None:
                # new rank = position + 1, old rank = new - shift: beyond this either is outside the top N.
                stop = min(stop, self.displaced_top + max(shift, 0))
            for j, standing in enumerate(self._index.islice(start, stop)):
                new_rank = start + j + 1
                points = standing.total_points
                changes.append(RankChange(standing.team_id, new_rank - shift, new_rank, points, points))
        big = 1 << 62
        return sorted(changes, key=lambda c: (c.new_rank if c.new_rank is not None else big, c.team_id))


# --- from scratch -----------------------------------------------------------------------------------------


def recompute(
    rules: RuleSet,
    results: Iterable[MatchResult],
    overrides: Iterable[Override] = (),
    disqualifications: Iterable[Disqualification] = (),
    forfeits: Iterable[Forfeit] = (),
    *,
    only_matches: set[str] | None = None,
    include_starting_points: bool = True,
) -> list[TeamStanding]:
    """Standings from scratch, best first: any mix of revisions, duplicates and superseded decisions in any
    order gives the same answer. ``only_matches`` restricts it to those matches (a subset view)."""
    current: dict[str, MatchResult] = {}
    for r in results:
        if r.match_id not in current or r.revision > current[r.match_id].revision:
            current[r.match_id] = r
    if only_matches is not None:
        current = {m: r for m, r in current.items() if m in only_matches}
    pinned: dict[tuple[str, str], Override] = {}
    for o in overrides:
        held = pinned.get((o.match_id, o.team_id))
        if held is None or o.precedence > held.precedence:
            pinned[(o.match_id, o.team_id)] = o
    dqs: dict[str, Disqualification] = {}
    for d in disqualifications:
        if d.team_id not in dqs or d.precedence < dqs[d.team_id].precedence:
            dqs[d.team_id] = d
    forfeited = {(f.match_id, f.team_id) for f in forfeits}

    lines: dict[str, list[Contribution]] = {}
    entries: list[tuple[int, str, dict[str, Entry]]] = []
    for match_id, result in current.items():
        rows = {row.team_id: row for row in result.rows}
        teams = set(rows) | {t for (m, t) in pinned if m == match_id} | {t for (m, t) in forfeited if m == match_id}
        by_team: dict[str, Entry] = {}
        for team_id in teams:
            line = contribution(rules, result, rows.get(team_id), pinned.get((match_id, team_id)),
                                (match_id, team_id) in forfeited, dqs.get(team_id))
            if line is not None:
                lines.setdefault(team_id, []).append(line)
                by_team[team_id] = _entries([line])[0]
        entries.append((result.sequence, match_id, by_team))

    effective_rules = rules
    if not include_starting_points:
        effective_rules = RuleSet(rules.table, rules.kill_points, rules.kill_cap, rules.tiebreakers, {},
                                  rules.match_point_threshold)
    champion = None
    if rules.match_point_threshold is not None:
        champion = find_champion(rules.match_point_threshold, effective_rules.starting_points, entries, excluded=dqs)
    for team_id in effective_rules.starting_points:
        lines.setdefault(team_id, [])
    standings = [
        aggregate(t, effective_rules, ls, disqualified=t in dqs, champion=t == champion) for t, ls in lines.items()
    ]
    return sorted(standings, key=sort_key_function(rules.tiebreakers))
