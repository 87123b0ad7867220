"""The event contract: every event Crownstream reads or writes, as typed, versioned models.

Wire format: one JSON object per Kafka record (orjson), with the envelope fields of ``Envelope`` and the
fields of its type. ``type`` selects the model; ``schema_version`` is the version of that type's fields.
A worker accepts only the versions listed in ``SUPPORTED_VERSIONS``; anything else goes to the dead-letter
topic with the reason, so a producer that upgrades early never corrupts state.

``event_id`` must be unique per logical event and stable across retries of the producer: the pipeline
deduplicates by it. Use the platform's own id (e.g. "match-812:completed:r2"), or a UUID stored before sending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from crownstream.schemas.common import (
    KILLS_MAX,
    POINTS_MAX,
    SEQUENCE_MAX,
    STARTING_POINTS_MAX,
    Audience,
    Id,
    Model,
    Money,
    MultilineText,
    StrictInt,
    Text,
    UtcDatetime,
)
from crownstream.standings.brackets import bracket_from_rules

# The scoring engine's own rules are the contract's: the edge refuses what the handlers would fail on, with the
# engine's messages, so a stage's rules can never be stored and then break every later result of the stage.
from crownstream.standings.groups import TIEBREAKERS as GROUP_TIEBREAKERS
from crownstream.standings.groups import GroupPointsRule
from crownstream.standings.point_tables import NAMED_TABLES, PointTable
from crownstream.standings.rules import RuleSet
from crownstream.standings.swiss import RANKING_CRITERIA as SWISS_RANKING
from crownstream.standings.swiss import SwissStage
from crownstream.standings.swiss import rules_from_dict as swiss_rules_from_dict
from crownstream.standings.tiebreakers import TIEBREAKERS

# One list (standings/tiebreakers.py) makes the runtime Literal, which validation and the JSON schema read; a type
# checker cannot evaluate a Literal built from a variable, so statically a tiebreaker is the str it is.
if TYPE_CHECKING:
    Tiebreaker = str
    GroupTiebreaker = str
    SwissCriterion = str
else:
    Tiebreaker = Literal[TIEBREAKERS]
    GroupTiebreaker = Literal[GROUP_TIEBREAKERS]
    SwissCriterion = Literal[SWISS_RANKING]

TIME_ALIVE_MAX_S = 24 * 3600  # one game; longer is a unit error upstream (milliseconds?)
PLACEMENT_MAX = 1000  # teams in one lobby; a point table longer than that scores placements no team can reach
REVISION_MAX = 2**31 - 1
# Engine outputs: what orjson can encode. The input bounds above keep every total far inside it.
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]


class Envelope(Model):
    event_id: Id = Field(description="Unique per logical event, stable across producer retries.")
    schema_version: StrictInt = Field(1, ge=1, description="Version of this type's fields.")
    occurred_at: UtcDatetime = Field(description="When it happened on the platform (timezone-aware; stored as UTC).")


# --- tournament structure -------------------------------------------------------------------------------


def _table_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "name"
    if isinstance(value, list):
        return "points"
    if isinstance(value, (dict, CumulativeTiers)):  # a dict in, the model when serialising
        return "tiers"
    return None


class CumulativeTiers(Model):
    """A placement table published as tiers: each [top N, points] is earned by every placement within the top N."""

    cumulative_tiers: list[
        Annotated[
            tuple[
                Annotated[StrictInt, Field(ge=1, le=PLACEMENT_MAX)], Annotated[StrictInt, Field(ge=0, le=POINTS_MAX)]
            ],
            Field(description="[top N, points]"),
        ]
    ] = Field(min_length=1, max_length=PLACEMENT_MAX)


class BattleRoyaleRules(Model):
    format: Literal["battle_royale"] = "battle_royale"
    point_table: Annotated[
        Annotated[str, Tag("name"), Field(json_schema_extra={"enum": sorted(NAMED_TABLES)})]
        | Annotated[
            list[Annotated[StrictInt, Field(ge=0, le=POINTS_MAX)]],
            Tag("points"),
            Field(min_length=1, max_length=PLACEMENT_MAX),
        ]
        | Annotated[CumulativeTiers, Tag("tiers")],
        # Tagged by the value's JSON type, so that an error names one rule (not "not a string" beside it).
        Discriminator(
            _table_kind,
            custom_error_type="point_table",
            custom_error_message="point_table must be a table name, a list of points per placement or "
            '{"cumulative_tiers": [[top N, points], …]}',
        ),
    ] = Field(
        description="A named table (pubgm_2023, pubgm_2020, free_fire, algs), the points for placement 1, 2, …, or "
        'cumulative tiers as some rulebooks publish them: {"cumulative_tiers": [[1, 5], [2, 5], [3, 6], [10, 2]]}'
    )
    kill_points: StrictInt = Field(1, ge=0, le=POINTS_MAX)
    kill_cap: StrictInt | None = Field(
        None, ge=0, le=POINTS_MAX, description="Most kills that score per team per match."
    )
    tiebreakers: list[Tiebreaker] | None = Field(
        None,
        min_length=1,
        max_length=len(TIEBREAKERS),
        json_schema_extra={"uniqueItems": True},
        description="Ordered, each at most once; default per the engine.",
    )
    starting_points: dict[Id, Annotated[StrictInt, Field(ge=-STARTING_POINTS_MAX, le=STARTING_POINTS_MAX)]] = Field(
        default_factory=dict, max_length=10_000, description="Points carried in, per team (negative: a deduction)."
    )
    match_point_threshold: StrictInt | None = Field(
        None, ge=1, le=STARTING_POINTS_MAX, description="Match-point final: points to become eligible."
    )

    @field_validator("point_table")
    @classmethod
    def _known_table(cls, value: str | list[int]) -> str | list[int]:
        if isinstance(value, str):
            PointTable.named(value)  # ValueError naming the known tables
        return value

    @model_validator(mode="after")
    def _engine_accepts(self) -> BattleRoyaleRules:
        # Whatever else the engine checks (tiebreakers listed twice, …), with its own message.
        RuleSet.from_dict(self.model_dump(mode="json"))
        return self


class SeriesGroupRules(Model):
    format: Literal["series_group"] = "series_group"
    best_of: Literal[1, 2, 3, 5, 7] = 3
    points: dict[Annotated[str, Field(max_length=8)], Annotated[StrictInt, Field(ge=0, le=POINTS_MAX)]] | None = Field(
        None,
        max_length=16,
        description="Points per final series score from the team's side, one for every final score of best_of, "
        'e.g. {"2-0": 3, "2-1": 2, "1-2": 1, "0-2": 0}; omitted: the engine\'s defaults.',
    )
    tiebreakers: list[GroupTiebreaker] | None = Field(
        None,
        min_length=1,
        max_length=len(GROUP_TIEBREAKERS),
        json_schema_extra={"uniqueItems": True},
        description="The chain after points, in order (head_to_head_* read only the series among the teams still "
        "tied, restarting for each sub-group a rule splits off); teams no rule separates share a rank. Omitted: "
        "head-to-head points, head-to-head map difference, map difference, maps won.",
    )
    seeds: dict[Id, Annotated[StrictInt, Field(ge=1, le=100_000)]] | None = Field(
        None, max_length=10_000, description='Seeds for the "seed" tiebreaker (1 = best).'
    )

    @model_validator(mode="after")
    def _every_final_score(self) -> SeriesGroupRules:
        # A table missing a final score would fail every later game of the stage: refused here, with the scores
        # that are missing or impossible.
        GroupPointsRule.from_dict(self.model_dump(mode="json"))
        return self


class PriorStageLine(Model):
    wins: StrictInt = Field(ge=0, le=1000)
    losses: StrictInt = Field(ge=0, le=1000)
    difficulty: StrictInt = Field(ge=-100_000, le=100_000)


class SwissStageRules(Model):
    """A Swiss stage (the Counter-Strike Major's rules by default): the pipeline pairs each round from the results
    and announces it as ``round.paired``; staff may send their own ``round.paired`` to replace a round."""

    format: Literal["swiss"] = "swiss"
    seeds: dict[Id, Annotated[StrictInt, Field(ge=1, le=1000)]] = Field(
        min_length=2, max_length=1000, description="Initial seed of every team of the stage, 1..n (1 = best)."
    )
    wins_to_advance: StrictInt = Field(3, ge=1, le=20)
    losses_to_eliminate: StrictInt = Field(3, ge=1, le=20)
    ordinary_best_of: Literal[1, 2, 3, 5, 7] = 1
    decisive_best_of: Literal[1, 2, 3, 5, 7] = Field(3, description="Matches that can advance or eliminate a team.")
    high_low_rounds: list[Annotated[StrictInt, Field(ge=2, le=40)]] = Field(
        default_factory=lambda: [2, 3],
        max_length=40,
        description="Rounds paired highest seed against lowest; the others use the six-team priority table.",
    )
    ranking: list[SwissCriterion] = Field(
        default_factory=lambda: list(SWISS_RANKING), min_length=1, max_length=len(SWISS_RANKING)
    )
    prior_stages: dict[Id, list[PriorStageLine]] = Field(
        default_factory=dict, max_length=1000, description="Earlier stages' W-L and difficulty per team, latest first."
    )

    @model_validator(mode="after")
    def _engine_accepts(self) -> SwissStageRules:
        rules, seeds, prior = swiss_rules_from_dict(self.model_dump(mode="json"))
        SwissStage("check", seeds, rules, prior)
        return self


class BracketSlot(Model):
    id: Id
    a: Annotated[str, Field(max_length=140, description='"seed:N", "winner:SLOT" or "loser:SLOT"')]
    b: Annotated[str, Field(max_length=140)]
    best_of: Literal[1, 2, 3, 5, 7] = 3
    loser_place: Annotated[str, Field(max_length=16)] | None = None
    winner_place: Annotated[str, Field(max_length=16)] | None = None
    reset_of: Id | None = None


class BracketStageRules(Model):
    """An elimination stage: a template (GSL group, seeded single elimination with byes, 8-team double
    elimination) or explicit slots. The pipeline announces the seeded bracket as ``bracket.ready``; series ids are
    ``<stage_id>-<slot id>``."""

    format: Literal["bracket"] = "bracket"
    seeds: dict[Id, Annotated[StrictInt, Field(ge=1, le=1024)]] = Field(min_length=2, max_length=1024)
    template: Literal["gsl_group", "single_elimination", "double_elimination", "double_elimination_8", "slots"]
    best_of: Literal[1, 2, 3, 5, 7] = 3
    final_best_of: Literal[1, 2, 3, 5, 7] | None = None
    finals_best_of: Literal[1, 2, 3, 5, 7] = 5
    decider_best_of: Literal[1, 2, 3, 5, 7] | None = None
    decider: bool = True
    reset: bool = False
    third_place: bool = False
    slots: list[BracketSlot] | None = Field(None, max_length=2048)

    @model_validator(mode="after")
    def _engine_accepts(self) -> BracketStageRules:
        bracket_from_rules("check", self.model_dump(mode="json", exclude_none=True))
        return self


class PrizeShare(Model):
    placement: StrictInt = Field(ge=1, le=100_000)
    prize: Money


class StageConfigured(Envelope):
    """Declares a stage and its rules; results of a stage are scored with the rules current when folded."""

    type: Literal["stage.configured"] = "stage.configured"
    tournament_id: Id
    stage_id: Id
    name: Text = Field("", max_length=200)
    rules: Annotated[
        BattleRoyaleRules | SeriesGroupRules | SwissStageRules | BracketStageRules, Field(discriminator="format")
    ]
    prizes: list[PrizeShare] = Field(default_factory=list, max_length=1000)


class TournamentRegistered(Envelope):
    type: Literal["tournament.registered"] = "tournament.registered"
    tournament_id: Id
    team_id: Id
    team_name: Text = Field(max_length=200)
    user_ids: list[Id] = Field(default_factory=list, max_length=100, description="Members registered with the team.")


class BracketMatch(Model):
    series_id: Id
    slot: Id
    team_a: Id
    team_b: Id
    best_of: Literal[1, 2, 3, 5, 7]


class BracketReady(Envelope):
    """A bracket is out: sent by a platform, or by the pipeline when a ``bracket`` stage is seeded (with the matches
    that can be played now)."""

    type: Literal["bracket.ready"] = "bracket.ready"
    tournament_id: Id
    stage_id: Id
    matches: list[BracketMatch] = Field(default_factory=list, max_length=2048)


class SwissPairing(Model):
    series_id: Id
    team_a: Id
    team_b: Id
    best_of: Literal[1, 2, 3, 5, 7]


class RoundPaired(Envelope):
    """A Swiss round's matches: announced by the pipeline when the round before is complete (source "generated"),
    or set by staff (source "staff"), which replaces the round."""

    type: Literal["round.paired"] = "round.paired"
    tournament_id: Id
    stage_id: Id
    round: StrictInt = Field(ge=1, le=100)
    source: Literal["generated", "staff"] = "staff"
    pairings: list[SwissPairing] = Field(min_length=1, max_length=512)

    @model_validator(mode="after")
    def _each_team_once(self) -> RoundPaired:
        seen: set[str] = set()
        for p in self.pairings:
            for team in (p.team_a, p.team_b):
                if team in seen:
                    raise ValueError(f"round {self.round} pairs team {team!r} twice")
                seen.add(team)
            if p.team_a == p.team_b:
                raise ValueError(f"series {p.series_id!r} pairs {p.team_a!r} with itself")
        return self


class TournamentCompleted(Envelope):
    type: Literal["tournament.completed"] = "tournament.completed"
    tournament_id: Id
    stage_id: Id = Field(description="The stage whose final standings decide placements and prizes.")


# --- matches and results --------------------------------------------------------------------------------


class MatchScheduled(Envelope):
    type: Literal["match.scheduled"] = "match.scheduled"
    tournament_id: Id
    stage_id: Id
    match_id: Id
    scheduled_at: UtcDatetime
    team_ids: list[Id] = Field(default_factory=list, max_length=1000)


class MatchStarted(Envelope):
    type: Literal["match.started"] = "match.started"
    tournament_id: Id
    stage_id: Id
    match_id: Id


class TeamPlacement(Model):
    team_id: Id
    placement: StrictInt = Field(ge=1, le=PLACEMENT_MAX)
    kills: StrictInt = Field(0, ge=0, le=KILLS_MAX)
    time_alive_s: StrictInt | None = Field(
        None,
        ge=0,
        le=TIME_ALIVE_MAX_S,
        description="Seconds the team survived, where the game reports it (tiebreaker).",
    )


class LobbyResult(Model):
    """A whole battle-royale lobby: every team's placement and kills in one match."""

    format: Literal["battle_royale"] = "battle_royale"
    sequence: StrictInt = Field(
        ge=1, le=SEQUENCE_MAX, description="Order of the match within the stage (1, 2, …); match-point rules use it."
    )
    placements: list[TeamPlacement] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_row_per_team(self) -> LobbyResult:
        seen: set[str] = set()
        for row in self.placements:
            if row.team_id in seen:
                raise ValueError(f"team {row.team_id!r} appears twice in one lobby result")
            seen.add(row.team_id)
        return self


class SeriesGameResult(Model):
    """One game of a best-of-N series."""

    format: Literal["series_game"] = "series_game"
    series_id: Id
    team_ids: Annotated[list[Id], Field(min_length=2, max_length=2)]
    game_number: StrictInt = Field(ge=1, le=7)
    winner_team_id: Id
    score: dict[Id, Annotated[StrictInt, Field(ge=0, le=POINTS_MAX)]] = Field(
        default_factory=dict, max_length=16, description="Optional per-team game score (rounds, kills…)."
    )

    @model_validator(mode="after")
    def _winner_plays(self) -> SeriesGameResult:
        if self.team_ids[0] == self.team_ids[1]:
            raise ValueError("a series needs two different teams")
        if self.winner_team_id not in self.team_ids:
            raise ValueError(f"winner {self.winner_team_id!r} is not one of the series' teams {self.team_ids}")
        return self


class MatchCompleted(Envelope):
    """A match result. (stage, match, revision) identifies it: a duplicate is a no-op, a higher revision
    replaces the earlier one."""

    type: Literal["match.completed"] = "match.completed"
    tournament_id: Id
    stage_id: Id
    match_id: Id
    revision: StrictInt = Field(1, ge=1, le=REVISION_MAX)
    result: Annotated[LobbyResult | SeriesGameResult, Field(discriminator="format")]


class MatchDisputed(Envelope):
    type: Literal["match.disputed"] = "match.disputed"
    tournament_id: Id
    stage_id: Id
    match_id: Id
    team_id: Id
    reason: MultilineText = Field(max_length=2000)


class ResultOverridden(Envelope):
    """A staff decision that pins a result regardless of later revisions; kept as an audit trail."""

    type: Literal["result.overridden"] = "result.overridden"
    tournament_id: Id
    stage_id: Id
    match_id: Id
    actor: Text = Field(min_length=1, max_length=200)
    reason: MultilineText = Field(min_length=1, max_length=2000)
    team_id: Id | None = Field(None, description="Battle royale: the team whose placement is pinned.")
    placement: StrictInt | None = Field(None, ge=1, le=PLACEMENT_MAX)
    kills: StrictInt | None = Field(None, ge=0, le=KILLS_MAX)
    series_id: Id | None = None
    game_number: StrictInt | None = Field(None, ge=1, le=7)
    winner_team_id: Id | None = Field(None, description="Series: the game's pinned winner.")

    @model_validator(mode="after")
    def _one_kind(self) -> ResultOverridden:
        br_fields = {"team_id": self.team_id, "placement": self.placement, "kills": self.kills}
        series_fields = {
            "series_id": self.series_id,
            "game_number": self.game_number,
            "winner_team_id": self.winner_team_id,
        }
        br = self.team_id is not None and self.placement is not None
        series = all(v is not None for v in series_fields.values())
        if br == series:
            raise ValueError(
                "an override pins either a battle-royale placement (team_id + placement [+ kills]) "
                "or a series game (series_id + game_number + winner_team_id), not both or neither"
            )
        # The handlers pick their kind by one field (team_id / series_id): a stray field of the other kind
        # would send the override to both, and one of them cannot apply it.
        stray = sorted(k for k, v in (series_fields if br else br_fields).items() if v is not None)
        if stray:
            kind = "a battle-royale placement" if br else "a series game"
            raise ValueError(f"an override of {kind} must not set {stray}")
        return self


class TeamDisqualified(Envelope):
    type: Literal["team.disqualified"] = "team.disqualified"
    tournament_id: Id
    stage_id: Id
    team_id: Id
    from_sequence: StrictInt = Field(
        1, ge=1, le=SEQUENCE_MAX, description="First match (by sequence) in which the team scores nothing."
    )
    actor: Text = Field(min_length=1, max_length=200)
    reason: MultilineText = Field(min_length=1, max_length=2000)


class MatchForfeited(Envelope):
    type: Literal["match.forfeited"] = "match.forfeited"
    tournament_id: Id
    stage_id: Id
    match_id: Id
    team_id: Id = Field(description="The team that forfeits.")
    series_id: Id | None = None


# --- teams and people -----------------------------------------------------------------------------------


class InviteSent(Envelope):
    type: Literal["invite.sent"] = "invite.sent"
    team_id: Id
    team_name: Text = Field("", max_length=200)
    user_id: Id = Field(description="The invitee.")
    invited_by: Id


class InviteAccepted(Envelope):
    type: Literal["invite.accepted"] = "invite.accepted"
    team_id: Id
    user_id: Id


class RosterChanged(Envelope):
    type: Literal["roster.changed"] = "roster.changed"
    team_id: Id
    added: list[Id] = Field(default_factory=list, max_length=100)
    removed: list[Id] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _something_changed(self) -> RosterChanged:
        if not self.added and not self.removed:
            raise ValueError("a roster change must add or remove at least one user")
        return self


class AchievementEarned(Envelope):
    type: Literal["achievement.earned"] = "achievement.earned"
    user_id: Id
    achievement: Text = Field(min_length=1, max_length=200)
    tournament_id: Id | None = None


class SponsorApproved(Envelope):
    type: Literal["sponsor.approved"] = "sponsor.approved"
    team_id: Id
    sponsor: Text = Field(min_length=1, max_length=200)


class PromotionStarted(Envelope):
    type: Literal["promotion.started"] = "promotion.started"
    promotion_id: Id
    title: Text = Field(min_length=1, max_length=200)
    audience: Audience


# --- money ----------------------------------------------------------------------------------------------


class PaymentVerified(Envelope):
    type: Literal["payment.verified"] = "payment.verified"
    payment_id: Id
    user_id: Id = Field(description="The payer.")
    tournament_id: Id | None = None
    amount: Money


class PaymentRefunded(Envelope):
    type: Literal["payment.refunded"] = "payment.refunded"
    payment_id: Id
    user_id: Id
    tournament_id: Id | None = None
    amount: Money
    reason: MultilineText = Field("", max_length=2000)


class PayoutDistributed(Envelope):
    type: Literal["payout.distributed"] = "payout.distributed"
    tournament_id: Id
    stage_id: Id
    team_id: Id
    placement: StrictInt = Field(ge=1, le=100_000)
    prize: Money


# --- outputs of the standings engine --------------------------------------------------------------------


class RankingChanged(Envelope):
    type: Literal["ranking.changed"] = "ranking.changed"
    tournament_id: Id
    stage_id: Id
    team_id: Id
    old_rank: StrictInt | None = Field(None, ge=1, description="None when the team enters the standings.")
    new_rank: StrictInt = Field(ge=1)
    points: Int64


class FinalPlacement(Model):
    team_id: Id
    placement: StrictInt = Field(ge=1)
    points: Int64


class StandingsFinalized(Envelope):
    type: Literal["standings.finalized"] = "standings.finalized"
    tournament_id: Id
    stage_id: Id
    placements: list[FinalPlacement] = Field(max_length=100_000)


# --- notification control -------------------------------------------------------------------------------


class NotificationScheduled(Envelope):
    type: Literal["notification.scheduled"] = "notification.scheduled"
    notification_id: Id
    send_at: UtcDatetime
    audience: Audience
    title: Text = Field(min_length=1, max_length=256)
    body: MultilineText = Field(min_length=1, max_length=4000)


class NotificationCancelled(Envelope):
    type: Literal["notification.cancelled"] = "notification.cancelled"
    notification_id: Id


class BroadcastRequested(Envelope):
    type: Literal["broadcast.requested"] = "broadcast.requested"
    broadcast_id: Id
    audience: Audience
    title: Text = Field(min_length=1, max_length=256)
    body: MultilineText = Field(min_length=1, max_length=4000)


class PreferencesUpdated(Envelope):
    """A user's full notification preferences (not a patch): the compacted preferences topic keeps the last."""

    type: Literal["preferences.updated"] = "preferences.updated"
    user_id: Id
    preferences: dict[str, Any] = Field(description="See crownstream.notifications.preferences for the fields.")


Event = Annotated[
    StageConfigured
    | TournamentRegistered
    | BracketReady
    | RoundPaired
    | TournamentCompleted
    | MatchScheduled
    | MatchStarted
    | MatchCompleted
    | MatchDisputed
    | ResultOverridden
    | TeamDisqualified
    | MatchForfeited
    | InviteSent
    | InviteAccepted
    | RosterChanged
    | AchievementEarned
    | SponsorApproved
    | PromotionStarted
    | PaymentVerified
    | PaymentRefunded
    | PayoutDistributed
    | RankingChanged
    | StandingsFinalized
    | NotificationScheduled
    | NotificationCancelled
    | BroadcastRequested
    | PreferencesUpdated,
    Field(discriminator="type"),
]

EVENT_MODELS: dict[str, type[Envelope]] = {
    model.model_fields["type"].default: model
    for model in get_args(get_args(Event)[0])  # Annotated[Union[...], discriminator] -> the union's models
}

# type -> schema versions this worker understands. Bump a type's version when its fields change
# incompatibly, and keep reading the old one until producers have moved.
SUPPORTED_VERSIONS: dict[str, frozenset[int]] = {name: frozenset({1}) for name in EVENT_MODELS}
