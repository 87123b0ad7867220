"""The notification catalog: one notification type per event people care about, its default channels,
whether it is critical, and how an event becomes a notice (title, body, link, data) and a target audience.

Pure: no I/O, no clock. Everything in a notice is derived from the event, so a replay builds the same notice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crownstream.notifications.errors import InvalidCatalog
from crownstream.schemas import events as ev
from crownstream.schemas.common import Audience, Money
from crownstream.standings.serialization import AS_IS, from_plain, stored_as, to_plain

IN_APP, EMAIL, DISCORD, WEBHOOK = "in_app", "email", "discord", "webhook"


@dataclass(frozen=True, slots=True)
class Throttle:
    """At most ``limit`` notices of a type per user (and tournament) within any ``window`` of event time; the
    rest are folded into the next one that goes out (notifications/throttle.py). ``counted`` names them, one and
    many, in the line that one carries: "And 7 more ranking changes since …". ``grace``: if nothing follows, the
    newest folded one goes out this long after the window has room again — a next notice already on its way
    through the pipeline's hops (a few seconds each) carries them instead."""

    limit: int
    window: timedelta
    counted: tuple[str, str]
    grace: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise InvalidCatalog(
                f"a throttle's limit is at least 1 (got {self.limit}); to mute a type, use the user's preferences"
            )
        if self.window <= timedelta(0):
            raise InvalidCatalog(f"a throttle's window is a positive duration (got {self.window})")
        if self.grace < timedelta(0):
            raise InvalidCatalog(f"a throttle's grace is zero or more (got {self.grace})")


@dataclass(frozen=True, slots=True)
class NotificationType:
    name: str
    event_type: str
    default_channels: frozenset[str]
    critical: bool = False  # payments and payouts: opt-outs, digests, quiet hours and throttles do not apply
    description: str = ""
    throttle: Throttle | None = None


def _t(
    name: str,
    event_type: str,
    channels: tuple[str, ...],
    description: str,
    critical: bool = False,
    throttle: Throttle | None = None,
) -> NotificationType:
    if critical and throttle is not None:
        raise InvalidCatalog(f"{name} is critical: every one is sent, so it cannot have a throttle")
    return NotificationType(name, event_type, frozenset(channels), critical, description, throttle)


_PERSONAL = (IN_APP, EMAIL)
_FEED = (IN_APP,)

# Throttles: only types that come in bursts and whose latest one says what matters (a team's rank now, the roster
# now), plus marketing. Never a type whose every notice carries its own information a user needs — a match's time
# or result, a dispute, an invite — and never a critical one (payments, payouts). match.started is left alone: a
# tournament's matches start tens of minutes apart, and the one that starts now is the one a player needs.
_RANKS = Throttle(3, timedelta(minutes=10), ("ranking change", "ranking changes"))
_ROSTER = Throttle(3, timedelta(minutes=10), ("roster change", "roster changes"))
_ACHIEVEMENTS = Throttle(3, timedelta(hours=1), ("achievement", "achievements"))
_PROMOTIONS = Throttle(2, timedelta(days=1), ("promotion", "promotions"))

TYPES: tuple[NotificationType, ...] = (
    _t("invite.sent", "invite.sent", _PERSONAL, "You were invited to a team."),
    _t("invite.accepted", "invite.accepted", _PERSONAL, "Someone joined your team."),
    _t("roster.changed", "roster.changed", _FEED, "Your team's roster changed.", throttle=_ROSTER),
    _t("tournament.registered", "tournament.registered", _PERSONAL, "Your team is registered for a tournament."),
    _t("bracket.ready", "bracket.ready", _PERSONAL, "The bracket of your tournament is out."),
    _t("round.paired", "round.paired", _PERSONAL, "Your team's next Swiss opponent is set."),
    _t("match.scheduled", "match.scheduled", _PERSONAL, "Your match has a time."),
    _t("match.started", "match.started", _FEED, "Your tournament's match started."),
    _t("match.result", "match.completed", _PERSONAL, "The result of your match."),
    _t("match.disputed", "match.disputed", _PERSONAL, "A result of your team is disputed."),
    _t("ranking.changed", "ranking.changed", _FEED, "Your team moved in the standings.", throttle=_RANKS),
    _t("sponsor.approved", "sponsor.approved", _PERSONAL, "Your team's sponsor was approved."),
    _t("promotion.started", "promotion.started", _FEED, "A promotion for you.", throttle=_PROMOTIONS),
    _t("payment.verified", "payment.verified", _PERSONAL, "Your payment went through.", critical=True),
    _t("payment.refunded", "payment.refunded", _PERSONAL, "Your payment was refunded.", critical=True),
    _t("payout.received", "payout.distributed", _PERSONAL, "Your team won prize money.", critical=True),
    _t("achievement.earned", "achievement.earned", _PERSONAL, "You earned an achievement.", throttle=_ACHIEVEMENTS),
    _t("tournament.completed", "tournament.completed", _PERSONAL, "Your tournament is over."),
    _t("scheduled", "notification.scheduled", _PERSONAL, "A message the platform scheduled for you."),
    _t("broadcast", "broadcast.requested", _FEED, "An announcement to many users."),
)
CATALOG: dict[str, NotificationType] = {t.name: t for t in TYPES}
BY_EVENT: dict[str, NotificationType] = {t.event_type: t for t in TYPES}


@dataclass(frozen=True, slots=True)
class Target:
    """Who an event is for, before membership lookups: users named in the event, teams, tournaments,
    or everybody. Resolved to user ids by the audience tables."""

    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    tournaments: tuple[str, ...] = ()
    all_users: bool = False

    @property
    def empty(self) -> bool:
        return not (self.users or self.teams or self.tournaments or self.all_users)


@dataclass(frozen=True, slots=True)
class Notice:
    """What to tell people about one event, the same for every recipient."""

    # Stored under the short keys "type" and "source": the records of the user partitions (and their
    # changelogs) were written with them before the generic helper.
    notification_type: str = field(metadata=stored_as("type"))
    source_event_id: str = field(metadata=stored_as("source"))
    created_at: datetime
    title: str
    body: str = ""
    path: str | None = None  # joined to the configured link base by the agent
    data: dict[str, Any] = field(default_factory=dict, metadata=AS_IS)  # JSON-friendly as the builders make it
    tournament_id: str | None = None

    @property
    def critical(self) -> bool:
        return CATALOG[self.notification_type].critical

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notice:
        return from_plain(cls, d, what="a stored notice")


def _money(m: Money) -> str:
    return f"{m.amount_minor / 100:,.2f} {m.currency}"


def _audience(a: Audience) -> Target:
    if a.kind == "users":
        return Target(users=tuple(dict.fromkeys(a.user_ids)))
    if a.kind == "team":
        return Target(teams=(a.team_id,))
    if a.kind == "tournament":
        return Target(tournaments=(a.tournament_id,))
    return Target(all_users=True)


#: What a builder makes of an event: title, body, link path, data, audience.
Built = tuple[str, str, str | None, dict[str, Any], Target]
Builder = Callable[[Any], Built]  # Any: each builder takes its own event type, chosen by BUILDERS[event.type]


def _invite_sent(e: ev.InviteSent) -> Built:
    team = e.team_name or e.team_id
    return (
        f"You're invited to join {team}",
        f"{e.invited_by} invited you to {team}.",
        f"/teams/{e.team_id}/invites",
        {"team_id": e.team_id, "team_name": e.team_name, "invited_by": e.invited_by},
        Target(users=(e.user_id,)),
    )


def _invite_accepted(e: ev.InviteAccepted) -> Built:
    return (
        f"{e.user_id} joined your team",
        "",
        f"/teams/{e.team_id}",
        {"team_id": e.team_id, "user_id": e.user_id},
        Target(teams=(e.team_id,)),
    )


def _roster(e: ev.RosterChanged) -> Built:
    parts = ([f"added {', '.join(e.added)}"] if e.added else []) + (
        [f"removed {', '.join(e.removed)}"] if e.removed else []
    )
    # Removed members are told too: the team lookup no longer includes them.
    return (
        "Your team's roster changed",
        "; ".join(parts).capitalize() + ".",
        f"/teams/{e.team_id}",
        {"team_id": e.team_id, "added": list(e.added), "removed": list(e.removed)},
        Target(users=tuple(e.removed), teams=(e.team_id,)),
    )


def _registered(e: ev.TournamentRegistered) -> Built:
    return (
        f"{e.team_name} is registered",
        f"{e.team_name} is registered for tournament {e.tournament_id}.",
        f"/tournaments/{e.tournament_id}",
        {"team_id": e.team_id, "team_name": e.team_name},
        Target(users=tuple(dict.fromkeys(e.user_ids)), teams=(e.team_id,)),
    )


def _bracket(e: ev.BracketReady) -> Built:
    return (
        "The bracket is ready",
        f"Stage {e.stage_id} has its bracket.",
        f"/tournaments/{e.tournament_id}/stages/{e.stage_id}",
        {"stage_id": e.stage_id},
        Target(tournaments=(e.tournament_id,)),
    )


def _round_paired(e: ev.RoundPaired) -> Built:
    matches = "; ".join(f"{p.team_a} v {p.team_b} (best of {p.best_of})" for p in e.pairings)
    return (
        f"Round {e.round} is paired",
        f"Stage {e.stage_id}, round {e.round}: {matches}."[:4000],
        f"/tournaments/{e.tournament_id}/groups/{e.stage_id}",
        {"stage_id": e.stage_id, "round": e.round, "source": e.source},
        Target(teams=tuple(dict.fromkeys(t for p in e.pairings for t in (p.team_a, p.team_b)))),
    )


def _scheduled_match(e: ev.MatchScheduled) -> Built:
    target = Target(teams=tuple(dict.fromkeys(e.team_ids))) if e.team_ids else Target(tournaments=(e.tournament_id,))
    return (
        f"Match {e.match_id} is scheduled",
        f"Starts at {e.scheduled_at.strftime('%Y-%m-%d %H:%M UTC')}.",
        f"/tournaments/{e.tournament_id}/matches/{e.match_id}",
        {"stage_id": e.stage_id, "match_id": e.match_id, "scheduled_at": e.scheduled_at.isoformat()},
        target,
    )


def _started(e: ev.MatchStarted) -> Built:
    return (
        f"Match {e.match_id} started",
        "",
        f"/tournaments/{e.tournament_id}/matches/{e.match_id}",
        {"stage_id": e.stage_id, "match_id": e.match_id},
        Target(tournaments=(e.tournament_id,)),
    )


def _result(e: ev.MatchCompleted) -> Built:
    r = e.result
    if r.format == "battle_royale":
        teams = tuple(p.team_id for p in r.placements)
        body = f"Match {r.sequence} of stage {e.stage_id} is scored."
    else:
        teams = tuple(r.team_ids)
        body = f"Game {r.game_number}: {r.winner_team_id} won."
    title = f"Result of match {e.match_id}" + (f" (corrected, revision {e.revision})" if e.revision > 1 else "")
    return (
        title,
        body,
        f"/tournaments/{e.tournament_id}/matches/{e.match_id}",
        {"stage_id": e.stage_id, "match_id": e.match_id, "revision": e.revision},
        Target(teams=teams),
    )


def _disputed(e: ev.MatchDisputed) -> Built:
    return (
        f"Result of match {e.match_id} disputed",
        e.reason,
        f"/tournaments/{e.tournament_id}/matches/{e.match_id}",
        {"stage_id": e.stage_id, "match_id": e.match_id, "team_id": e.team_id},
        Target(teams=(e.team_id,)),
    )


def _ranking(e: ev.RankingChanged) -> Built:
    moved = f"from #{e.old_rank} to #{e.new_rank}" if e.old_rank else f"in at #{e.new_rank}"
    return (
        f"Your team is now #{e.new_rank}",
        f"Moved {moved} with {e.points} points.",
        f"/tournaments/{e.tournament_id}/standings",
        {
            "stage_id": e.stage_id,
            "team_id": e.team_id,
            "old_rank": e.old_rank,
            "new_rank": e.new_rank,
            "points": e.points,
        },
        Target(teams=(e.team_id,)),
    )


def _sponsor(e: ev.SponsorApproved) -> Built:
    return (
        f"Sponsor {e.sponsor} approved",
        "",
        f"/teams/{e.team_id}",
        {"team_id": e.team_id, "sponsor": e.sponsor},
        Target(teams=(e.team_id,)),
    )


def _promotion(e: ev.PromotionStarted) -> Built:
    return (e.title, "", f"/promotions/{e.promotion_id}", {"promotion_id": e.promotion_id}, _audience(e.audience))


def _payment(e: ev.PaymentVerified) -> Built:
    return (
        f"Payment of {_money(e.amount)} received",
        "",
        f"/payments/{e.payment_id}",
        {"payment_id": e.payment_id, "amount": e.amount.model_dump()},
        Target(users=(e.user_id,)),
    )


def _refund(e: ev.PaymentRefunded) -> Built:
    return (
        f"Refund of {_money(e.amount)}",
        e.reason,
        f"/payments/{e.payment_id}",
        {"payment_id": e.payment_id, "amount": e.amount.model_dump(), "reason": e.reason},
        Target(users=(e.user_id,)),
    )


def _payout(e: ev.PayoutDistributed) -> Built:
    return (
        f"You placed #{e.placement}: {_money(e.prize)}",
        "",
        f"/tournaments/{e.tournament_id}/payouts",
        {"stage_id": e.stage_id, "team_id": e.team_id, "placement": e.placement, "prize": e.prize.model_dump()},
        Target(teams=(e.team_id,)),
    )


def _achievement(e: ev.AchievementEarned) -> Built:
    return (
        f"Achievement unlocked: {e.achievement}",
        "",
        f"/users/{e.user_id}/achievements",
        {"achievement": e.achievement},
        Target(users=(e.user_id,)),
    )


def _completed(e: ev.TournamentCompleted) -> Built:
    return (
        "The tournament is over",
        f"Final standings of stage {e.stage_id} are in.",
        f"/tournaments/{e.tournament_id}/standings",
        {"stage_id": e.stage_id},
        Target(tournaments=(e.tournament_id,)),
    )


def _scheduled(e: ev.NotificationScheduled) -> Built:
    return (e.title, e.body, None, {"notification_id": e.notification_id}, _audience(e.audience))


def _broadcast(e: ev.BroadcastRequested) -> Built:
    return (e.title, e.body, None, {"broadcast_id": e.broadcast_id}, _audience(e.audience))


BUILDERS: dict[str, Builder] = {
    "invite.sent": _invite_sent,
    "invite.accepted": _invite_accepted,
    "roster.changed": _roster,
    "tournament.registered": _registered,
    "bracket.ready": _bracket,
    "round.paired": _round_paired,
    "match.scheduled": _scheduled_match,
    "match.started": _started,
    "match.completed": _result,
    "match.disputed": _disputed,
    "ranking.changed": _ranking,
    "sponsor.approved": _sponsor,
    "promotion.started": _promotion,
    "payment.verified": _payment,
    "payment.refunded": _refund,
    "payout.distributed": _payout,
    "achievement.earned": _achievement,
    "tournament.completed": _completed,
    "notification.scheduled": _scheduled,
    "broadcast.requested": _broadcast,
}
assert set(BUILDERS) == set(BY_EVENT), "every catalog type needs a builder"


def notice_for(event: ev.Event, source_id: str | None = None) -> tuple[Notice, Target] | None:
    """The notice and its target for ``event``; None for events nobody is notified of."""
    kind = BY_EVENT.get(event.type)
    if kind is None:
        return None
    title, body, path, data, target = BUILDERS[event.type](event)
    source = source_id or event.event_id
    return Notice(
        kind.name,
        source,
        event.occurred_at,
        title[:256],
        body[:4000],
        path,
        data,
        getattr(event, "tournament_id", None),
    ), target
