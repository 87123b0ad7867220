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
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sortedcontainers import SortedList

from crownstream.standings.br_inputs import (
    Disqualification,
    Forfeit,
    LobbyRow,
    MatchResult,
    Override,
    StageInput,
    check_id,
)
from crownstream.standings.br_scoring import (
    Contribution,
    TeamStanding,
    TeamTotals,
    aggregate,
    contribution,
    match_entries,
    match_order,
)
from crownstream.standings.match_point import Entry, Win, eligible_wins, find_champion
from crownstream.standings.rules import RuleSet
from crownstream.standings.serialization import to_plain
from crownstream.standings.tiebreakers import SortKey, separating_rule, sort_key_function, tie_ceiling, tie_floor

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
        return to_plain(self)


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
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
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
        check_id(stage_id, "stage_id")
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
        # Running sums per team, kept up to date by adding new lines; lines changed or removed since the last
        # commit send their team's sums to be rebuilt from its lines (``_pending_totals``).
        self._totals: dict[str, TeamTotals] = {}
        self._appended: dict[str, list[Contribution]] = {}
        self._rebuild: set[str] = set()
        self._standings: dict[str, TeamStanding] = {}
        # The ranking: each team's sort key (its last part is the team id), computed once per new standing and
        # kept beside it, where a key-function list recomputed keys on every add, remove and bisect.
        self._index: SortedList = SortedList()
        self._keys: dict[str, SortKey] = {}
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
        """1 + the number of teams ranked strictly above: teams level on every rule share a rank."""
        standing = self._standings.get(team_id)
        return None if standing is None else self._index.bisect_left(tie_floor(self._keys[team_id])) + 1

    def standings(self, offset: int = 0, limit: int | None = None) -> list[tuple[int, TeamStanding]]:
        """A page of (rank, standing), best first; level teams share a rank (listed by team id)."""
        return [(rank, standing) for rank, _, standing in self.page(offset, limit)]

    def page(self, offset: int = 0, limit: int | None = None) -> list[tuple[int, str, TeamStanding]]:
        """A page of (rank, decided_by, standing): ``decided_by`` names the rule that ranks the team below the one
        listed above it ("tie" if none does, "" for the first team of the stage)."""
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError(f"offset and limit must not be negative, got offset={offset}, limit={limit}")
        stop = None if limit is None else offset + limit
        standings = self._standings
        previous: SortKey | None = self._index[offset - 1] if 0 < offset <= len(self._index) else None
        rank = 0
        out: list[tuple[int, str, TeamStanding]] = []
        for i, key in enumerate(self._index.islice(offset, stop)):
            if previous is None:
                rule, rank = "", 1
            else:
                rule = separating_rule(previous, key, self.rules.tiebreakers)
                if rule != "tie":
                    rank = offset + i + 1
                elif not out:  # the page starts inside a tie: its rank is where the tie starts
                    rank = self._index.bisect_left(tie_floor(key)) + 1
            out.append((rank, rule, standings[key[-1]]))
            previous = key
        return out

    def team_matches(self, team_id: str) -> list[Contribution]:
        """What each match gave the team, in match order."""
        return sorted(self._lines.get(team_id, {}).values(), key=match_order)

    def audit_trail(self, team_id: str) -> list[AuditEntry]:
        return sorted(self._audit.get(team_id, ()), key=lambda e: e.override.precedence)

    def standings_over(self, match_ids: Iterable[str], *, include_starting_points: bool = False) -> list[TeamStanding]:
        """Standings counting only the given matches (the query API's ``?matches=``), from scratch.
        Points carried in belong to no match, so they are left out unless asked for."""
        return recompute(
            self.rules,
            self.results(),
            self.overrides(),
            self.disqualifications(),
            self.forfeits(),
            only_matches=set(match_ids),
            include_starting_points=include_starting_points,
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
        raise TypeError(
            f"cannot apply {type(item).__name__}; expected a MatchResult, Override, Disqualification or Forfeit"
        )

    def apply_result(self, result: MatchResult) -> Change:
        if result.stage_id != self.stage_id:
            raise ValueError(
                f"result of match {result.match_id} is for stage {result.stage_id!r}, "
                f"not this leaderboard's stage {self.stage_id!r}; route it to its own stage"
            )
        match_id = result.match_id
        current = self._results.get(match_id)
        if current is not None and result.revision <= current.revision:
            return Change(
                Status.DUPLICATE if result.revision == current.revision else Status.STALE, champion=self._champion
            )
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
        return {
            "version": SNAPSHOT_VERSION,
            "stage_id": self.stage_id,
            "rules": self.rules.to_dict(),
            "matches": matches,
            "teams": teams,
        }

    @classmethod
    def restore(cls, snapshot: Mapping[str, Any]) -> Leaderboard:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"snapshot version {snapshot.get('version')!r} is not {SNAPSHOT_VERSION}; "
                "rebuild the stage from its events instead"
            )
        return cls.from_states(
            RuleSet.from_dict(snapshot["rules"]),
            snapshot["stage_id"],
            snapshot.get("matches", {}),
            snapshot.get("teams", {}),
        )

    @classmethod
    def from_states(
        cls,
        rules: RuleSet,
        stage_id: str,
        matches: Mapping[str, Mapping[str, Any]],
        teams: Mapping[str, Mapping[str, Any]],
    ) -> Leaderboard:
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
                self.rules,
                result,
                self._rows[match_id].get(team_id),
                self._overrides.get(match_id, {}).get(team_id),
                team_id in self._forfeits.get(match_id, ()),
                self._disqualifications.get(team_id),
            )
        lines = self._lines.setdefault(team_id, {})
        previous = lines.get(match_id)
        if line is None:
            lines.pop(match_id, None)
            if not lines:
                del self._lines[team_id]
        else:
            lines[match_id] = line
        if previous is None and line is not None:
            self._appended.setdefault(team_id, []).append(line)
        elif previous != line:
            self._rebuild.add(team_id)

    def _pending_totals(self) -> None:
        """Bring the running sums up to the lines: new lines added, teams with a changed line rebuilt."""
        for team_id in self._rebuild:
            self._totals.pop(team_id, None)
        for team_id, added in self._appended.items():
            totals = self._totals.get(team_id)
            if totals is not None:
                for line in added:
                    totals.add(line)
        self._rebuild.clear()
        self._appended.clear()

    def _team_totals(self, team_id: str) -> TeamTotals:
        totals = self._totals.get(team_id)
        if totals is None:
            totals = self._totals[team_id] = TeamTotals.of(self._lines.get(team_id, {}).values())
        return totals

    def _refresh_wins(self, team_id: str) -> None:
        threshold = self.rules.match_point_threshold
        if threshold is None:
            return
        for win in self._team_wins.pop(team_id, ()):
            self._wins.remove(win)
        if team_id in self._disqualifications:
            return  # a disqualified team cannot take the title
        wins = eligible_wins(
            team_id, threshold, self.rules.starting(team_id), match_entries(self._lines.get(team_id, {}).values())
        )
        if wins:
            self._team_wins[team_id] = wins
            self._wins.update(wins)

    def _commit(
        self, touched: set[str], dirty_matches: tuple[str, ...] = (), dirty_teams: tuple[str, ...] = ()
    ) -> Change:
        self._pending_totals()
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
                self._totals.pop(team_id, None)
                after = None
            else:
                after = self._team_totals(team_id).standing(
                    team_id, self.rules, disqualified=team_id in self._disqualifications, champion=team_id == champion
                )
            if before != after:
                if before is not None:
                    old[team_id] = before
                if after is not None:
                    new[team_id] = after

        old_keys = {t: self._keys[t] for t in old}
        old_ranks = {t: self._index.bisect_left(tie_floor(k)) + 1 for t, k in old_keys.items()}
        for team_id in old:
            self._index.remove(self._keys.pop(team_id))
            del self._standings[team_id]
        new_keys = {t: self._key(s) for t, s in new.items()}
        for team_id, standing in new.items():
            key = self._keys[team_id] = new_keys[team_id]
            self._index.add(key)
            self._standings[team_id] = standing

        changed = set(old) | set(new)
        return Change(
            Status.APPLIED,
            changed=tuple(sorted(changed)),
            rank_changes=tuple(self._rank_changes(old, new, old_ranks, old_keys, new_keys)),
            champion=champion,
            champion_changed=champion_changed,
            dirty_matches=dirty_matches,
            dirty_teams=dirty_teams,
        )

    def _rank_changes(
        self,
        old: dict[str, TeamStanding],
        new: dict[str, TeamStanding],
        old_ranks: dict[str, int],
        old_key_of: dict[str, SortKey],
        new_key_of: dict[str, SortKey],
    ) -> list[RankChange]:
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

        # A rank counts the teams strictly above, so a moved team shifts an unmoved one only if it now ranks, or
        # used to rank, strictly above it: compare with the moved keys' ceilings (above every key level with
        # them), which never equal a team's key.
        old_keys = sorted(tie_ceiling(k) for k in old_key_of.values())
        new_keys = sorted(tie_ceiling(k) for k in new_key_of.values())
        moved = old.keys() | new.keys()
        bounds = sorted(old_keys + new_keys)
        for i in range(len(bounds)):
            lo = bounds[i]
            hi = bounds[i + 1] if i + 1 < len(bounds) else None
            shift = bisect_right(new_keys, lo) - bisect_right(old_keys, lo)
            if shift == 0 or lo == hi:
                continue
            start = self._index.bisect_right(lo)
            if start >= len(self._index):
                break
            first_rank = self._index.bisect_left(tie_floor(self._index[start])) + 1
            if self.displaced_top is not None and first_rank > self.displaced_top + max(len(new_keys), 0):
                # This stretch, and every one after it (they start further down), is below the top N even after
                # the largest shift: a lobby of mid-table teams costs no index reads past this point.
                break
            stop = len(self._index) if hi is None else self._index.bisect_left(hi)
            limit = None if self.displaced_top is None else self.displaced_top + max(shift, 0)
            rank, previous = first_rank, None
            for j, key in enumerate(self._index.islice(start, stop)):
                if previous is not None and key[:-1] != previous[:-1]:
                    rank = start + j + 1
                previous = key
                if limit is not None and rank > limit:
                    break  # new rank past the top N and old rank (new - shift) too: so is everything after
                team_id = key[-1]
                if team_id in moved:
                    continue  # reported above with its own old and new rank
                points = self._standings[team_id].total_points
                changes.append(RankChange(team_id, rank - shift, rank, points, points))
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
            line = contribution(
                rules,
                result,
                rows.get(team_id),
                pinned.get((match_id, team_id)),
                (match_id, team_id) in forfeited,
                dqs.get(team_id),
            )
            if line is not None:
                lines.setdefault(team_id, []).append(line)
                by_team[team_id] = match_entries([line])[0]
        entries.append((result.sequence, match_id, by_team))

    effective_rules = rules
    if not include_starting_points:
        effective_rules = RuleSet(
            rules.table, rules.kill_points, rules.kill_cap, rules.tiebreakers, {}, rules.match_point_threshold
        )
    champion = None
    if rules.match_point_threshold is not None:
        champion = find_champion(rules.match_point_threshold, effective_rules.starting_points, entries, excluded=dqs)
    for team_id in effective_rules.starting_points:
        lines.setdefault(team_id, [])
    standings = [
        aggregate(t, effective_rules, ls, disqualified=t in dqs, champion=t == champion) for t, ls in lines.items()
    ]
    return sorted(standings, key=sort_key_function(rules.tiebreakers))
