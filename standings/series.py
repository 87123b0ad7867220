"""A best-of-N series between two teams: game results in; score, status, winner and games out. Pure, no I/O.

The state is the *current set of facts*: per game number the highest revision reported, every staff override
and every forfeit. Score, status, winner and which games count are derived from that set each time they are
asked for, never kept as running counters. So a correction that flips game 2 re-derives the winner, and the
order in which events arrive (a replay, a rebalance, a late correction) cannot change the outcome: every
choice between competing facts is made by a rule that looks at the facts only, never at arrival order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from crownstream.standings import validators as check
from crownstream.standings.serialization import OMIT_DEFAULT, PAIRS, from_plain, to_plain

SUPPORTED_BEST_OF = (1, 2, 3, 5, 7)
# How a forfeited series is scored: "awarded" gives the other team a clean k-0 (most rulebooks' default
# win); "played" keeps the games actually played and only sets the winner.
FORFEIT_SCORE_POLICIES = ("awarded", "played")
STATE_VERSION = 1


class SeriesStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class ChangeStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the same fact again: nothing changes
    STALE = "stale"  # an older revision than the one held: nothing changes
    CONFLICT = "conflict"  # same revision / event id, different content: a deterministic choice was kept
    REJECTED = "rejected"  # can never be valid for this series (wrong series, team, game number)


# --- series-specific validators ----------------------------------------------------------------


def _score_pairs(value: Any) -> tuple[tuple[str, int], ...]:
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    pairs = []
    for team_id, points in items:
        pairs.append((check.text(team_id, "a score's team id"), check.integer(points, f"score of {team_id!r}", 0)))
    if len({t for t, _ in pairs}) != len(pairs):
        raise ValueError(f"a game score names a team twice: {value!r}")
    return tuple(sorted(pairs))


# --- configuration -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesFormat:
    best_of: int = 3
    forfeit_score: str = "awarded"

    def __post_init__(self) -> None:
        if type(self.best_of) is not int or self.best_of not in SUPPORTED_BEST_OF:  # 3.0 and True are not formats
            raise ValueError(f"best_of must be one of {list(SUPPORTED_BEST_OF)}, got {self.best_of!r}")
        if self.forfeit_score not in FORFEIT_SCORE_POLICIES:
            raise ValueError(f"forfeit_score must be one of {list(FORFEIT_SCORE_POLICIES)}, got {self.forfeit_score!r}")

    @property
    def wins_needed(self) -> int:
        # A best-of-2 always plays both games, so 2-0 is its only win; odd formats are first to k of 2k-1.
        return 2 if self.best_of == 2 else self.best_of // 2 + 1

    @property
    def allows_draw(self) -> bool:
        return self.best_of == 2

    def is_decided(self, wins_a: int, wins_b: int) -> bool:
        if self.best_of == 2:
            return wins_a + wins_b >= 2
        return max(wins_a, wins_b) >= self.wins_needed

    def final_scores(self) -> tuple[tuple[int, int], ...]:
        """Every score a completed series of this format can end on, from one team's side, best first."""
        if self.best_of == 2:
            return ((2, 0), (1, 1), (0, 2))
        k = self.wins_needed
        return tuple((k, j) for j in range(k)) + tuple((j, k) for j in reversed(range(k)))

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> SeriesFormat:
        data = check.mapping(data, "a series format", ("best_of", "forfeit_score"))
        best_of = data.get("best_of", 3)
        if isinstance(best_of, str):
            # "bo3" / "BO3" / "3" are how organisers write it; accept them rather than fail a config on style.
            digits = best_of.strip().lower().removeprefix("bo")
            if not digits.isdigit():
                raise ValueError(f"best_of must be a number such as 3 (or 'bo3'), got {best_of!r}")
            data = {**data, "best_of": int(digits)}
        return from_plain(cls, data, what="a series format", closed=True)


# --- input facts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GameResult:
    """One reported game. (series, game number, revision) identifies it; a higher revision replaces it."""

    series_id: str
    game_number: int
    winner_team_id: str
    revision: int = 1
    score: tuple[tuple[str, int], ...] = field(default=(), metadata=PAIRS)  # optional per-team score (rounds,
    # kills …); a mapping is accepted

    def __post_init__(self) -> None:
        check.text(self.series_id, "series_id")
        check.integer(self.game_number, "game_number", 1)
        check.text(self.winner_team_id, "winner_team_id")
        check.integer(self.revision, "revision", 1)
        object.__setattr__(self, "score", _score_pairs(self.score))

    def _content(self) -> tuple[str, tuple[tuple[str, int], ...]]:
        return (self.winner_team_id, self.score)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> GameResult:
        return from_plain(cls, data, what="a game result", closed=True)


@dataclass(frozen=True, slots=True)
class GameOverride:
    """A staff decision pinning a game's winner. It beats every revision, past and future."""

    event_id: str
    series_id: str
    game_number: int
    winner_team_id: str
    actor: str
    reason: str
    at: str  # ISO-8601; normalised to UTC

    def __post_init__(self) -> None:
        for name in ("event_id", "series_id", "winner_team_id", "actor", "reason"):
            check.text(getattr(self, name), name)
        check.integer(self.game_number, "game_number", 1)
        object.__setattr__(self, "at", check.utc(self.at, "an override's 'at'"))

    def _content(self) -> tuple[str, int, str, str, str, str]:
        return (self.series_id, self.game_number, self.winner_team_id, self.actor, self.reason, self.at)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> GameOverride:
        return from_plain(cls, data, what="a game override", closed=True)


@dataclass(frozen=True, slots=True)
class Forfeit:
    """A team gives up the whole series; the other team wins it."""

    event_id: str
    series_id: str
    team_id: str  # the team that forfeits
    at: str  # ISO-8601; normalised to UTC
    actor: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        for name in ("event_id", "series_id", "team_id"):
            check.text(getattr(self, name), name)
        object.__setattr__(self, "at", check.utc(self.at, "a forfeit's 'at'"))

    def _content(self) -> tuple[str, str, str, str, str]:
        return (self.series_id, self.team_id, self.at, self.actor, self.reason)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> Forfeit:
        return from_plain(cls, data, what="a forfeit", closed=True)


SeriesEvent = GameResult | GameOverride | Forfeit


# --- derived views -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GameView:
    game_number: int
    winner_team_id: str  # after overrides
    source: str  # "result" or "override"
    revision: int | None  # of the reported result; None when staff entered the game without a report
    reported_winner: str | None  # what the report said, kept when an override disagrees
    score: tuple[tuple[str, int], ...] = field(metadata=PAIRS)
    counted: bool
    note: str = ""  # why a game does not count

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    kind: str  # "override" or "forfeit"
    event_id: str
    game_number: int | None
    team_id: str  # override: the pinned winner; forfeit: the team that forfeited
    actor: str
    reason: str
    at: str
    effective: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


@dataclass(frozen=True, slots=True)
class SeriesResult:
    """What a group table needs from a series: the outcome, not the games."""

    series_id: str
    team_a: str
    team_b: str
    best_of: int
    status: SeriesStatus
    games_a: int
    games_b: int
    winner: str | None = None
    forfeited_by: str | None = None
    # Rounds (or points) won over the counted games, when every counted game reported both teams' score: the
    # round-difference tiebreakers of VALORANT and Counter-Strike groups read them.
    rounds_a: int | None = field(default=None, metadata=OMIT_DEFAULT)
    rounds_b: int | None = field(default=None, metadata=OMIT_DEFAULT)

    def __post_init__(self) -> None:
        check.text(self.series_id, "series_id")
        check.text(self.team_a, "team_a")
        check.text(self.team_b, "team_b")
        if self.team_a == self.team_b:
            raise ValueError(f"series {self.series_id!r} needs two different teams, got {self.team_a!r} twice")
        SeriesFormat(self.best_of)  # validates best_of with the same message everywhere
        object.__setattr__(self, "status", SeriesStatus(self.status))
        check.integer(self.games_a, "games_a", 0)
        check.integer(self.games_b, "games_b", 0)
        for name in ("winner", "forfeited_by"):
            team = getattr(self, name)
            if team is not None and team not in (self.team_a, self.team_b):
                raise ValueError(
                    f"{name} {team!r} of series {self.series_id!r} is not one of its teams {[self.team_a, self.team_b]}"
                )
        # A group table trusts these fields, so an inconsistent result is refused here rather than mis-ranked.
        if self.status != SeriesStatus.COMPLETED:
            if self.winner is not None or self.forfeited_by is not None:
                raise ValueError(
                    f"series {self.series_id!r} is {self.status} but names a winner or a forfeit; "
                    "only a completed series has those"
                )
        elif self.forfeited_by is not None:
            if self.winner is None or self.winner == self.forfeited_by:
                raise ValueError(
                    f"series {self.series_id!r} was forfeited by {self.forfeited_by!r}, so the winner "
                    f"must be the other team, got {self.winner!r}"
                )
        else:
            expected = (
                None if self.games_a == self.games_b else self.team_a if self.games_a > self.games_b else self.team_b
            )
            if self.winner != expected:
                raise ValueError(
                    f"series {self.series_id!r} ended {self.games_a}-{self.games_b}, so the winner is "
                    f"{expected!r}, not {self.winner!r}"
                )

    @property
    def completed(self) -> bool:
        return self.status == SeriesStatus.COMPLETED

    @property
    def is_draw(self) -> bool:
        return self.completed and self.winner is None

    def games_for(self, team_id: str) -> tuple[int, int]:
        """(games won, games lost) from ``team_id``'s side."""
        if team_id == self.team_a:
            return self.games_a, self.games_b
        if team_id == self.team_b:
            return self.games_b, self.games_a
        raise ValueError(f"team {team_id!r} does not play series {self.series_id!r}")

    def rounds_for(self, team_id: str) -> tuple[int, int] | None:
        """(rounds won, rounds lost) from ``team_id``'s side; None when the games did not report them."""
        if self.rounds_a is None or self.rounds_b is None:
            return None
        return (self.rounds_a, self.rounds_b) if team_id == self.team_a else (self.rounds_b, self.rounds_a)

    def opponent(self, team_id: str) -> str:
        self.games_for(team_id)
        return self.team_b if team_id == self.team_a else self.team_a

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> SeriesResult:
        return from_plain(cls, data, what="a series result", closed=True)


@dataclass(frozen=True, slots=True)
class SeriesState:
    series_id: str
    team_a: str
    team_b: str
    format: SeriesFormat
    status: SeriesStatus
    score_a: int
    score_b: int
    winner: str | None
    forfeited_by: str | None
    games: tuple[GameView, ...]
    audit: tuple[AuditEntry, ...]

    @property
    def score(self) -> tuple[int, int]:
        return self.score_a, self.score_b

    @property
    def is_draw(self) -> bool:
        return self.status == SeriesStatus.COMPLETED and self.winner is None

    def result(self) -> SeriesResult:
        counted = [dict(g.score) for g in self.games if g.counted]
        scored = (
            bool(counted) and self.forfeited_by is None and all(self.team_a in s and self.team_b in s for s in counted)
        )
        return SeriesResult(
            self.series_id,
            self.team_a,
            self.team_b,
            self.format.best_of,
            self.status,
            self.score_a,
            self.score_b,
            self.winner,
            self.forfeited_by,
            sum(s[self.team_a] for s in counted) if scored else None,
            sum(s[self.team_b] for s in counted) if scored else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "series_id": self.series_id,
            "team_a": self.team_a,
            "team_b": self.team_b,
            "format": self.format.to_dict(),
            "status": str(self.status),
            "score": [self.score_a, self.score_b],
            "winner": self.winner,
            "is_draw": self.is_draw,
            "forfeited_by": self.forfeited_by,
            "games": [g.to_dict() for g in self.games],
            "audit": [a.to_dict() for a in self.audit],
        }


@dataclass(frozen=True, slots=True)
class SeriesChange:
    status: ChangeStatus
    reason: str
    state: SeriesState
    result_changed: bool = False  # status, score, winner or forfeit differ from before

    @property
    def applied(self) -> bool:
        return self.status in (ChangeStatus.APPLIED, ChangeStatus.CONFLICT)


# --- derivation --------------------------------------------------------------------------------------


def _effective_override(overrides: Iterable[GameOverride]) -> GameOverride:
    """The override that holds among ``overrides`` (never empty: one list per game that has any)."""
    # The latest decision (then the greatest event id, for equal timestamps) wins, whatever the arrival order.
    return max(overrides, key=lambda o: (o.at, o.event_id))


def derive_state(
    series_id: str,
    team_a: str,
    team_b: str,
    fmt: SeriesFormat,
    games: Mapping[int, GameResult],
    overrides: Iterable[GameOverride],
    forfeits: Iterable[Forfeit],
) -> SeriesState:
    """The series as the given facts make it. Pure; ``Series.state()`` is this over its current facts."""
    by_game: dict[int, list[GameOverride]] = {}
    for o in overrides:
        by_game.setdefault(o.game_number, []).append(o)
    pinned = {n: _effective_override(os) for n, os in by_game.items()}

    wins = {team_a: 0, team_b: 0}
    views: list[GameView] = []
    decided_at: tuple[int, int, int] | None = None  # (game, a, b) when the series was decided
    missing: int | None = None  # first game number without any result
    for n in range(1, fmt.best_of + 1):
        report, override = games.get(n), pinned.get(n)
        if override is not None:
            game_winner = override.winner_team_id
        elif report is not None:
            game_winner = report.winner_team_id
        else:
            missing = n if missing is None else missing
            continue
        note = ""
        # Games after the decision are IGNORED, not rejected: they stay stored and visible with this note, so
        # that a correction which reopens the series (2-0 becomes 1-1) brings them back into the count. Rejecting
        # them on arrival would make the outcome depend on whether the correction came before or after them.
        if decided_at is not None:
            note = (
                f"not counted: the series was already decided {decided_at[1]}-{decided_at[2]} after game "
                f"{decided_at[0]}; kept in case a correction reopens it"
            )
        elif missing is not None:
            # Counting past a gap would let game 3 decide a series whose game 2 is unknown.
            note = f"not counted yet: waiting for the result of game {missing}"
        else:
            wins[game_winner] += 1
            if fmt.is_decided(wins[team_a], wins[team_b]):
                decided_at = (n, wins[team_a], wins[team_b])
        views.append(
            GameView(
                game_number=n,
                winner_team_id=game_winner,
                source="override" if override else "result",
                revision=report.revision if report else None,
                reported_winner=report.winner_team_id
                if report and override and report.winner_team_id != game_winner
                else None,
                score=report.score if report else (),
                counted=not note,
                note=note,
            )
        )

    forfeit_list = sorted(forfeits, key=lambda f: (f.at, f.event_id))
    # The first forfeit in time ends the series; a later one (even by the other team) changes nothing.
    forfeit = forfeit_list[0] if forfeit_list else None
    score_a, score_b = wins[team_a], wins[team_b]
    winner: str | None
    if forfeit is not None:
        # A forfeit is a ruling on the whole series and beats whatever the games say, even a finished series.
        winner = team_b if forfeit.team_id == team_a else team_a
        if fmt.forfeit_score == "awarded":
            k = fmt.wins_needed
            score_a, score_b = (k, 0) if winner == team_a else (0, k)
        status = SeriesStatus.COMPLETED
    elif decided_at is not None:
        status = SeriesStatus.COMPLETED
        winner = None if score_a == score_b else (team_a if score_a > score_b else team_b)
    else:
        status = SeriesStatus.IN_PROGRESS if views else SeriesStatus.SCHEDULED
        winner = None

    audit = []
    for n in sorted(by_game):
        for o in sorted(by_game[n], key=lambda o: (o.at, o.event_id)):
            chosen = pinned[n]
            audit.append(
                AuditEntry(
                    "override",
                    o.event_id,
                    n,
                    o.winner_team_id,
                    o.actor,
                    o.reason,
                    o.at,
                    o is chosen,
                    "" if o is chosen else f"superseded by {chosen.event_id}",
                )
            )
    for f in forfeit_list:
        audit.append(
            AuditEntry(
                "forfeit",
                f.event_id,
                None,
                f.team_id,
                f.actor,
                f.reason,
                f.at,
                f is forfeit,
                "" if f is forfeit_list[0] else f"the series had already been forfeited ({forfeit_list[0].event_id})",
            )
        )
    return SeriesState(
        series_id,
        team_a,
        team_b,
        fmt,
        status,
        score_a,
        score_b,
        winner,
        forfeit.team_id if forfeit else None,
        tuple(views),
        tuple(audit),
    )


def _outcome(state: SeriesState) -> tuple[SeriesStatus, int, int, str | None, str | None]:
    return (state.status, state.score_a, state.score_b, state.winner, state.forfeited_by)


# --- the aggregate -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Series:
    series_id: str
    team_a: str
    team_b: str
    format: SeriesFormat = field(default_factory=SeriesFormat)
    _games: dict[int, GameResult] = field(default_factory=dict)
    _overrides: dict[str, GameOverride] = field(default_factory=dict)  # event id -> override
    _forfeits: dict[str, Forfeit] = field(default_factory=dict)  # event id -> forfeit

    def __post_init__(self) -> None:
        check.text(self.series_id, "series_id")
        check.text(self.team_a, "team_a")
        check.text(self.team_b, "team_b")
        if self.team_a == self.team_b:
            raise ValueError(f"series {self.series_id!r} needs two different teams, got {self.team_a!r} twice")
        if not isinstance(self.format, SeriesFormat):
            raise ValueError(
                f"format must be a SeriesFormat (use SeriesFormat.from_dict for a dict), "
                f"got {type(self.format).__name__}"
            )

    @property
    def teams(self) -> tuple[str, str]:
        return self.team_a, self.team_b

    def state(self) -> SeriesState:
        return derive_state(
            self.series_id,
            self.team_a,
            self.team_b,
            self.format,
            self._games,
            self._overrides.values(),
            self._forfeits.values(),
        )

    # --- updates ------------------------------------------------------------------------------------

    def apply(self, event: SeriesEvent) -> SeriesChange:
        if isinstance(event, GameResult):
            return self.apply_result(event)
        if isinstance(event, GameOverride):
            return self.apply_override(event)
        if isinstance(event, Forfeit):
            return self.apply_forfeit(event)
        raise TypeError(f"a series takes GameResult, GameOverride or Forfeit, got {type(event).__name__}")

    def apply_result(self, game: GameResult) -> SeriesChange:
        problem = self._check(game.series_id, game.game_number, game.winner_team_id, "winner")
        if problem is None:
            strangers = sorted({t for t, _ in game.score} - set(self.teams))
            if strangers:
                problem = f"the score names {strangers}, who do not play series {self.series_id!r} {list(self.teams)}"
        if problem is not None:
            return self._unchanged(ChangeStatus.REJECTED, problem)
        current = self._games.get(game.game_number)
        if current is not None and current.revision > game.revision:
            return self._unchanged(
                ChangeStatus.STALE,
                f"game {game.game_number} is already at revision "
                f"{current.revision}; revision {game.revision} is older and is ignored",
            )
        if current is not None and current.revision == game.revision:
            if current == game:
                return self._unchanged(ChangeStatus.DUPLICATE, "already recorded")
            # Two different payloads under one revision is a producer bug. Keep the greater one so every
            # replica keeps the same whichever arrived first, and say how to fix it properly.
            keep = max(current, game, key=GameResult._content)
            reason = (
                f"revision {game.revision} of game {game.game_number} was reported twice with different "
                f"content; kept winner {keep.winner_team_id!r} deterministically — send revision "
                f"{game.revision + 1} to correct it"
            )
            return self._mutate(lambda: self._games.__setitem__(game.game_number, keep), ChangeStatus.CONFLICT, reason)
        return self._mutate(lambda: self._games.__setitem__(game.game_number, game), ChangeStatus.APPLIED, "")

    def apply_override(self, override: GameOverride) -> SeriesChange:
        problem = self._check(override.series_id, override.game_number, override.winner_team_id, "pinned winner")
        if problem is not None:
            return self._unchanged(ChangeStatus.REJECTED, problem)
        current = self._overrides.get(override.event_id)
        if current == override:
            return self._unchanged(ChangeStatus.DUPLICATE, "already recorded")
        if current is not None:
            keep = max(current, override, key=GameOverride._content)
            reason = (
                f"override {override.event_id!r} was sent twice with different content; kept one "
                "deterministically — give a new decision a new event id"
            )
            return self._mutate(lambda: self._overrides.__setitem__(keep.event_id, keep), ChangeStatus.CONFLICT, reason)
        return self._mutate(lambda: self._overrides.__setitem__(override.event_id, override), ChangeStatus.APPLIED, "")

    def apply_forfeit(self, forfeit: Forfeit) -> SeriesChange:
        if forfeit.series_id != self.series_id:
            return self._unchanged(
                ChangeStatus.REJECTED, f"forfeit is for series {forfeit.series_id!r}, not {self.series_id!r}"
            )
        if forfeit.team_id not in self.teams:
            return self._unchanged(
                ChangeStatus.REJECTED,
                f"team {forfeit.team_id!r} does not play series {self.series_id!r} {list(self.teams)}",
            )
        current = self._forfeits.get(forfeit.event_id)
        if current == forfeit:
            return self._unchanged(ChangeStatus.DUPLICATE, "already recorded")
        if current is not None:
            keep = max(current, forfeit, key=Forfeit._content)
            reason = (
                f"forfeit {forfeit.event_id!r} was sent twice with different content; kept one "
                "deterministically — give a new ruling a new event id"
            )
            return self._mutate(lambda: self._forfeits.__setitem__(keep.event_id, keep), ChangeStatus.CONFLICT, reason)
        return self._mutate(lambda: self._forfeits.__setitem__(forfeit.event_id, forfeit), ChangeStatus.APPLIED, "")

    def _check(self, series_id: str, game_number: int, team_id: str, role: str) -> str | None:
        if series_id != self.series_id:
            return f"event is for series {series_id!r}, not {self.series_id!r}"
        if game_number > self.format.best_of:
            return (
                f"game {game_number} cannot exist in a best-of-{self.format.best_of}; game numbers run "
                f"1..{self.format.best_of}"
            )
        if team_id not in self.teams:
            return f"{role} {team_id!r} does not play series {self.series_id!r} {list(self.teams)}"
        return None

    def _unchanged(self, status: ChangeStatus, reason: str) -> SeriesChange:
        return SeriesChange(status, reason, self.state(), False)

    def _mutate(self, change: Callable[[], None], status: ChangeStatus, reason: str) -> SeriesChange:
        before = _outcome(self.state())
        change()
        after = self.state()
        return SeriesChange(status, reason, after, _outcome(after) != before)

    # --- persistence --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly state for a key-value table; sorted so equal states serialise identically."""
        return {
            "version": STATE_VERSION,
            "series_id": self.series_id,
            "team_a": self.team_a,
            "team_b": self.team_b,
            "format": self.format.to_dict(),
            "games": [self._games[n].to_dict() for n in sorted(self._games)],
            "overrides": [self._overrides[k].to_dict() for k in sorted(self._overrides)],
            "forfeits": [self._forfeits[k].to_dict() for k in sorted(self._forfeits)],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Series:
        data = check.mapping(
            data,
            "a stored series",
            ("version", "series_id", "team_a", "team_b", "format", "games", "overrides", "forfeits"),
        )
        version = data.get("version")
        if version != STATE_VERSION:
            raise ValueError(
                f"stored series has version {version!r}; this code reads version {STATE_VERSION} — "
                "migrate the stored state or deploy the matching code"
            )
        what = "a stored series"
        series = cls(
            check.required(data, "series_id", what),
            check.required(data, "team_a", what),
            check.required(data, "team_b", what),
            SeriesFormat.from_dict(data.get("format", {})),
        )
        for raw in data.get("games", []):
            series._restore(series.apply_result(GameResult.from_dict(raw)), raw)
        for raw in data.get("overrides", []):
            series._restore(series.apply_override(GameOverride.from_dict(raw)), raw)
        for raw in data.get("forfeits", []):
            series._restore(series.apply_forfeit(Forfeit.from_dict(raw)), raw)
        return series

    def _restore(self, change: SeriesChange, raw: Any) -> None:
        if change.status != ChangeStatus.APPLIED:
            raise ValueError(
                f"stored series {self.series_id!r} is inconsistent at {raw!r}: {change.status} ({change.reason})"
            )
