"""The one place that names every Crownstream topic, how it is keyed, partitioned and retained.

Keys decide which worker owns what: everything about a tournament is keyed by ``tournament_id`` so that a
tournament's standings live on one worker and need no cross-worker reads; per-user streams are keyed by
``user_id`` so that a user's preferences and deliveries are co-partitioned (same key, same partition count).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crownstream.schemas.deliveries import CHANNELS
from crownstream.schemas.events import EVENT_MODELS
from crownstream.settings import Settings, get_settings


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str  # without the deployment prefix
    key: str  # what the record key is; the event field it comes from for input topics
    description: str
    partitions: int | None = None  # None = settings.topic_partitions
    compacted: bool = False
    retention_ms: int | None = None  # None = the broker's default
    event_types: tuple[str, ...] = field(default=())
    # Internal topics of one consumer group (repartitions), named after the app id like Faust's changelogs:
    # a second group on the same prefix (a replay, a blue/green deploy) must not read the first one's.
    per_app: bool = False

    def full_name(self, settings: Settings | None = None) -> str:
        s = settings or get_settings()
        return s.topic_prefix + (f"{s.app_id}." if self.per_app else "") + self.name

    def partition_count(self, settings: Settings | None = None) -> int:
        return self.partitions or (settings or get_settings()).topic_partitions

    def config(self) -> dict[str, str]:
        cfg: dict[str, str] = {}
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


DAY_MS = 24 * 3600 * 1000

TOURNAMENT_EVENTS = TopicSpec(
    "crownstream.tournament-events",
    key="tournament_id",
    description="Stage configuration, matches, results, corrections, overrides, disqualifications, completion.",
    retention_ms=90 * DAY_MS,  # long enough to rebuild a season's standings from the log
    event_types=(
        "stage.configured",
        "tournament.registered",
        "bracket.ready",
        "round.paired",
        "tournament.completed",
        "match.scheduled",
        "match.started",
        "match.completed",
        "match.disputed",
        "result.overridden",
        "team.disqualified",
        "match.forfeited",
    ),
)
PLATFORM_EVENTS = TopicSpec(
    "crownstream.platform-events",
    key="subject (team_id, user_id or promotion_id: see KEY_FIELDS)",
    description="Teams, people and money: invites, rosters, achievements, sponsors, promotions, payments.",
    retention_ms=30 * DAY_MS,
    event_types=(
        "invite.sent",
        "invite.accepted",
        "roster.changed",
        "achievement.earned",
        "sponsor.approved",
        "promotion.started",
        "payment.verified",
        "payment.refunded",
    ),
)
STANDINGS_EVENTS = TopicSpec(
    "crownstream.standings-events",
    key="tournament_id",
    description="Produced by the standings engine: ranking changes, final placements, payouts.",
    retention_ms=90 * DAY_MS,
    event_types=("ranking.changed", "standings.finalized", "payout.distributed"),
)
NOTIFICATION_CONTROL = TopicSpec(
    "crownstream.notification-control",
    key="notification_id or broadcast_id",
    description="Scheduled notifications, cancellations and broadcasts.",
    retention_ms=30 * DAY_MS,
    event_types=("notification.scheduled", "notification.cancelled", "broadcast.requested"),
)
PREFERENCES = TopicSpec(
    "crownstream.preferences",
    key="user_id",
    description="Each user's latest notification preferences (compacted: the log is the store).",
    compacted=True,
    event_types=("preferences.updated",),
)
DEAD_LETTER = TopicSpec(
    "crownstream.dead-letter",
    key="the original record's key",
    description="Records that could not be decoded or validated, with the reason in headers; replayable.",
    partitions=1,  # low volume; one partition keeps the listing in arrival order
    retention_ms=30 * DAY_MS,
)


# Delivery requests (schemas/deliveries.py), one topic per channel so that a slow channel (SMTP, a dead
# webhook) never holds back another; keyed by user_id, co-partitioned with the preferences table.
DELIVERIES: dict[str, TopicSpec] = {
    channel: TopicSpec(
        f"crownstream.deliveries.{channel.replace('_', '-')}",
        key="user_id",
        description=f"Delivery requests for the {channel} channel, one per user and notification (dedup_key).",
        retention_ms=7 * DAY_MS,
    )
    for channel in CHANNELS
}
DELIVERY_DEAD_LETTER = TopicSpec(
    "crownstream.deliveries.dead-letter",
    key="user_id",
    description="Delivery requests that failed their last attempt or were invalid, with the reason; replayable.",
    partitions=1,
    retention_ms=30 * DAY_MS,
)

# Notification fan-out's internal repartition topics (agents/notifications*.py, agents/audiences.py).
NOTIFICATION_AUDIENCES = TopicSpec(
    "crownstream.notification-audiences",
    key="team_id or tournament_id",
    description="Internal: membership changes and notices to resolve, keyed by the team or tournament whose table "
    "holds the audience.",
    retention_ms=7 * DAY_MS,
    per_app=True,
)
NOTIFICATION_USERS = TopicSpec(
    "crownstream.notification-users",
    key="user_id",
    description="Internal: a notice with the recipients of one partition (and broadcast steps), co-partitioned with "
    "the preferences table.",
    retention_ms=7 * DAY_MS,
    per_app=True,
)
NOTIFICATION_TIMERS = TopicSpec(
    "crownstream.notification-timers",
    key="user_id or notification_id",
    description="Internal: due digests, quiet-hour releases and scheduled sends, processed by the key's owner.",
    retention_ms=DAY_MS,
    per_app=True,
)
NOTIFICATION_INTERNAL = (NOTIFICATION_AUDIENCES, NOTIFICATION_USERS, NOTIFICATION_TIMERS)

INPUT_TOPICS: tuple[TopicSpec, ...] = (TOURNAMENT_EVENTS, PLATFORM_EVENTS, NOTIFICATION_CONTROL, PREFERENCES)
ALL_TOPICS: tuple[TopicSpec, ...] = (
    *INPUT_TOPICS,
    STANDINGS_EVENTS,
    DEAD_LETTER,
    *DELIVERIES.values(),
    DELIVERY_DEAD_LETTER,
    *NOTIFICATION_INTERNAL,
)

TOPIC_FOR_TYPE: dict[str, TopicSpec] = {t: spec for spec in ALL_TOPICS for t in spec.event_types}

# The event field whose value is the record key, per type. Same key -> same partition -> same worker.
KEY_FIELDS: dict[str, str] = {
    **{t: "tournament_id" for t in TOURNAMENT_EVENTS.event_types},
    **{t: "tournament_id" for t in STANDINGS_EVENTS.event_types},
    "invite.sent": "team_id",
    "invite.accepted": "team_id",
    "roster.changed": "team_id",
    "sponsor.approved": "team_id",
    "achievement.earned": "user_id",
    "payment.verified": "user_id",
    "payment.refunded": "user_id",
    "promotion.started": "promotion_id",
    "notification.scheduled": "notification_id",
    "notification.cancelled": "notification_id",
    "broadcast.requested": "broadcast_id",
    "preferences.updated": "user_id",
}

# Every event type must have a home and a key; fail at import rather than at the first produce.
_missing = set(EVENT_MODELS) - set(TOPIC_FOR_TYPE)
if _missing or set(EVENT_MODELS) - set(KEY_FIELDS):
    raise RuntimeError(
        f"topic registry incomplete: no topic/key for {sorted(_missing | (set(EVENT_MODELS) - set(KEY_FIELDS)))}"
    )


def topic_for(event_type: str) -> TopicSpec:
    return TOPIC_FOR_TYPE[event_type]


def key_for(event) -> bytes:
    return str(getattr(event, KEY_FIELDS[event.type])).encode()
