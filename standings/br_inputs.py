"""Battle-royale stage inputs, as stored: the effective lobby result of each match (highest revision wins),
staff overrides, disqualifications and forfeits. Validated on construction; times are canonical UTC text.
Scoring is in ``br_scoring``, the leaderboard that holds these inputs in ``battle_royale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crownstream.standings.serialization import OMIT_DEFAULT, PlainDataError, from_plain, to_plain


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
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def check_id(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def check_int(value: Any, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer of at least {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class LobbyRow:
    team_id: str
    placement: int
    kills: int = 0
    time_alive_s: int | None = field(default=None, metadata=OMIT_DEFAULT)  # seconds survived, where reported

    def __post_init__(self) -> None:
        check_id(self.team_id, "team_id")
        check_int(self.placement, f"placement of team {self.team_id!r}", 1)
        check_int(self.kills, f"kills of team {self.team_id!r}", 0)
        if self.time_alive_s is not None:
            check_int(self.time_alive_s, f"time_alive_s of team {self.team_id!r}", 0)


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
        check_id(self.stage_id, "stage_id")
        check_id(self.match_id, "match_id")
        check_int(self.revision, f"match {self.match_id}: revision", 1)
        check_int(self.sequence, f"match {self.match_id}: sequence", 1)
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
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchResult:
        try:
            return from_plain(cls, data, what="a match result")
        except PlainDataError as exc:
            raise ValueError(f"not a match result {data!r}: missing or malformed: {exc}") from None

    @classmethod
    def from_event(cls, event: Any) -> MatchResult:
        """The result a battle-royale ``match.completed`` event (schemas/events.py ``MatchCompleted``) reports: one
        constructor for the agent, ``crownstream standings rebuild`` and the tests, so they cannot read it apart."""
        return cls(
            event.stage_id,
            event.match_id,
            event.revision,
            event.result.sequence,
            event.occurred_at.isoformat(),
            tuple(LobbyRow(p.team_id, p.placement, p.kills, p.time_alive_s) for p in event.result.placements),
        )


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
            check_id(getattr(self, name), f"override {name}")
        check_int(self.placement, "override placement", 1)
        if self.kills is not None:
            check_int(self.kills, "override kills", 0)
        object.__setattr__(self, "at", utc_timestamp(self.at))

    @property
    def precedence(self) -> tuple[str, str]:
        return (self.at, self.override_id)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Override:
        return from_plain(cls, data, what="an override", optional={"kills"})

    @classmethod
    def from_event(cls, event: Any) -> Override:
        """The decision a team's ``result.overridden`` event (``ResultOverridden`` with a team) records."""
        return cls(
            event.event_id,
            event.match_id,
            event.team_id,
            event.placement,
            event.kills,
            event.actor,
            event.reason,
            event.occurred_at.isoformat(),
        )


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
            check_id(getattr(self, name), f"disqualification {name}")
        check_int(self.from_sequence, "disqualification from_sequence", 1)
        object.__setattr__(self, "at", utc_timestamp(self.at))

    @property
    def precedence(self) -> tuple[int, str]:
        return (self.from_sequence, self.disqualification_id)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Disqualification:
        return from_plain(cls, data, what="a disqualification")

    @classmethod
    def from_event(cls, event: Any) -> Disqualification:
        """The disqualification a ``team.disqualified`` event records."""
        return cls(
            event.event_id, event.team_id, event.from_sequence, event.actor, event.reason, event.occurred_at.isoformat()
        )


@dataclass(frozen=True, slots=True)
class Forfeit:
    """The team forfeits the match: it scores 0 there but the match counts as played."""

    match_id: str
    team_id: str

    def __post_init__(self) -> None:
        check_id(self.match_id, "forfeit match_id")
        check_id(self.team_id, "forfeit team_id")


StageInput = MatchResult | Override | Disqualification | Forfeit
