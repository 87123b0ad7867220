"""Per-user fan-out: preferences applied, one delivery request per (user, channel), digests and quiet hours.

Tables, all keyed by user id and co-partitioned with the notification-users topic (no remote lookups):
  ``notification-preferences``  user -> validated preferences (from the compacted preferences topic)
  ``notification-directory``    user -> 1; everyone known, walked partition by partition by broadcasts
  ``notification-digests``      user -> {"items": {channel: [DigestItem]}, "last_day": local day last sent}
  ``notification-deferred``     user -> [{"release_at", "request"}] waiting for quiet hours to end

A worker's timer (every CROWNSTREAM_NOTIFICATIONS_TICK_S) looks at its own users for due digests and
releases and sends a tick to notification-timers; the tick's handler re-checks and emits in its transaction.
"last_day" is committed with the digest it sent, so a digest goes out at most once per user per local day,
whatever restarts and duplicate ticks happen.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import orjson

from crownstream.agents.decoding import RejectRecord, input_topic, process_events, process_internal
from crownstream.agents.errors import UnknownOp as UnknownOp
from crownstream.agents.notifications_common import CLOCK, USERS, send, send_tick, timers_topic, users_topic
from crownstream.app import app
from crownstream.metrics import NOTIFICATION_CLOCK, NOTIFICATION_HELD, NOTIFICATION_REQUESTS, NOTIFICATION_SKIPPED
from crownstream.notifications.catalog import CATALOG, Notice, NotificationType
from crownstream.notifications.clock import digest_due
from crownstream.notifications.preferences import DEFAULTS, InvalidPreferences, Preferences, parse_preferences
from crownstream.notifications.requests import RequestTemplate, digest_item, digest_request
from crownstream.notifications.routing import Resolution, resolve
from crownstream.schemas.codec import Rejection
from crownstream.schemas.deliveries import CHANNELS, DeliveryRequest
from crownstream.settings import get_settings
from crownstream.streams.topics import DELIVERIES, NOTIFICATION_USERS, PREFERENCES

log = logging.getLogger(__name__)
PARTITIONS = NOTIFICATION_USERS.partition_count()
SETTINGS = get_settings()

preferences = app.Table(
    "notification-preferences", default=None, partitions=PARTITIONS, help="user -> notification preferences"
)
directory = app.Table(
    "notification-directory", default=None, partitions=PARTITIONS, help="user -> 1, every user known to notifications"
)
digests = app.Table("notification-digests", default=None, partitions=PARTITIONS, help="user -> held digest items")
deferred = app.Table(
    "notification-deferred", default=None, partitions=PARTITIONS, help="user -> requests held until quiet hours end"
)

delivery_topic_names = {channel: spec.full_name() for channel, spec in DELIVERIES.items()}
preferences_topic = input_topic(PREFERENCES)


class UserPrefs:
    """A user's parsed preferences with what fan-out derives from them, computed once per version: the
    contact as the request carries it and, when no quiet hours make it depend on the time, the resolution
    per notification type. Validating and resolving per notification would dominate a broadcast's cost."""

    __slots__ = ("_resolutions", "contact", "prefs", "stored")

    def __init__(self, stored: Any, prefs: Preferences) -> None:
        self.stored, self.prefs = stored, prefs
        self.contact = prefs.contact_for_delivery().model_dump(mode="json")
        self._resolutions: dict[str, Resolution] = {}

    def resolve(self, kind: NotificationType, now: datetime) -> Resolution:
        if self.prefs.quiet_hours is not None:
            return resolve(kind, self.prefs, now)
        cached = self._resolutions.get(kind.name)
        if cached is None:
            cached = self._resolutions[kind.name] = resolve(kind, self.prefs, now)
        return cached


_DEFAULT_PREFS = UserPrefs(None, DEFAULTS)
# Checked against the table's value on every use, so it can never serve stale preferences.
_parsed: dict[str, UserPrefs] = {}


def prefs_entry(user_id: str) -> UserPrefs:
    stored = preferences.get(user_id)
    if stored is None:
        return _DEFAULT_PREFS
    cached = _parsed.get(user_id)
    if cached is not None and cached.stored == stored:
        return cached
    if len(_parsed) > 100_000:
        _parsed.clear()
    entry = _parsed[user_id] = UserPrefs(stored, Preferences.model_validate(stored))
    return entry


def preferences_of(user_id: str) -> Preferences:
    return prefs_entry(user_id).prefs


# Rendered requests per (notice, channel): a team's or a broadcast's recipients share one.
_templates: dict[tuple[str, str, str], RequestTemplate] = {}


def template_for(notice: Notice, channel: str) -> RequestTemplate:
    key = (notice.source_event_id, notice.notification_type, channel)
    template = _templates.get(key)
    if template is None:
        if len(_templates) > 10_000:
            _templates.clear()
        template = _templates[key] = RequestTemplate(notice, channel, SETTINGS.notifications_link_base)
    return template


async def apply_preferences(event) -> None:
    try:
        prefs = parse_preferences(event.preferences)
    except InvalidPreferences as exc:
        # The envelope is valid, the free-form preferences are not: the user keeps their previous ones
        # and the record goes to the dead-letter topic with the reason, replayable once fixed.
        raise RejectRecord(
            Rejection(
                "invalid", f"invalid preferences.updated for user {event.user_id!r}: {exc}", event.type, event.event_id
            )
        ) from None
    preferences[event.user_id] = prefs.model_dump(mode="json")
    if directory.get(event.user_id) is None:
        directory[event.user_id] = 1


@app.agent(preferences_topic, name="notification-preferences")
async def fold_preferences(stream) -> None:
    await process_events(stream, "notification-preferences", apply_preferences)


async def send_raw(channel: str, user_id: str, value: bytes, kind: str = "single") -> None:
    """Straight to the producer Faust would use (the input partition's transaction under exactly_once):
    Topic.send's per-message bookkeeping costs more than the rest of a fan-out step."""
    producer = await app.maybe_start_producer()
    await producer.send(delivery_topic_names[channel], user_id.encode(), value, None, None, None)
    NOTIFICATION_REQUESTS.labels(channel, kind).inc()


async def send_request(request: DeliveryRequest) -> None:
    await send_raw(request.channel, request.user_id, request.encode(), request.kind)


async def notify(user_id: str, notice: Notice, now: datetime) -> None:
    entry = prefs_entry(user_id)
    resolution = entry.resolve(CATALOG[notice.notification_type], now)
    for skip in resolution.skipped:
        if skip.reason != "not_selected":
            NOTIFICATION_SKIPPED.labels(skip.channel, skip.reason).inc()
    for route in resolution.routes:
        if route.mode == "digest":
            held = dict(digests.get(user_id) or {"items": {}, "last_day": None})
            items = dict(held["items"])
            items[route.channel] = [
                *items.get(route.channel, []),
                digest_item(notice, SETTINGS.notifications_link_base),
            ]
            digests[user_id] = {**held, "items": items}
            NOTIFICATION_HELD.labels("digest").inc()
            continue
        value = template_for(notice, route.channel).render(user_id, entry.contact)
        if route.mode == "deferred":
            waiting = list(deferred.get(user_id) or [])
            waiting.append(
                {"release_at": route.release_at.isoformat(), "channel": route.channel, "request": value.decode()}
            )
            deferred[user_id] = waiting
            NOTIFICATION_HELD.labels("deferred").inc()
        else:
            await send_raw(route.channel, user_id, value)


def _partition_users(partition: int, after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` user ids of the directory's ``partition``, in key order, after ``after``.

    Faust's table API iterates every partition at once; a broadcast step needs one partition from a
    cursor, so this reads that partition's RocksDB (rocksdict) store directly. Keys are stored as the
    table's key serializer writes them (JSON strings).
    """
    db = directory.data._db_for_partition(partition)
    start = orjson.dumps(after) if after is not None else None
    users: list[str] = []
    for key in db.keys(from_key=start) if start is not None else db.keys():
        if key == start or key.startswith(b"__faust"):
            continue
        users.append(orjson.loads(key))
        if len(users) >= limit:
            break
    return users


async def broadcast_step(record: dict[str, Any], partition: int, now: datetime) -> None:
    batch = _partition_users(partition, record["after"], SETTINGS.notifications_broadcast_chunk)
    notice = Notice.from_dict(record["notice"])
    for user_id in batch:
        await notify(user_id, notice, now)
    if len(batch) == SETTINGS.notifications_broadcast_chunk:
        # The next step queues behind whatever arrived meanwhile: other users' notices are not blocked.
        await send(USERS, f"broadcast:{partition}".encode(), orjson.dumps({**record, "after": batch[-1]}), partition)


async def apply_user_record(record) -> None:
    # Written only by our own agents: a record we cannot read or apply is a bug, dead-lettered with the reason
    # by process_internal (it neither stops every user's notices behind it nor vanishes).
    data = orjson.loads(record.value)
    op = data["op"]
    now = CLOCK.now()
    if op == "notify":
        notice = Notice.from_dict(data["notice"])  # before any write: an unreadable notice changes nothing
        user_id = data["user"]
        if directory.get(user_id) is None:
            directory[user_id] = 1
        await notify(user_id, notice, now)
    elif op == "known":
        if directory.get(data["user"]) is None:
            directory[data["user"]] = 1
    elif op == "broadcast_step":
        await broadcast_step(data, record.message.partition, now)
    else:
        raise UnknownOp(f"unknown notification-users op {str(op)[:64]!r}")


@app.agent(users_topic, name="notification-users")
async def fan_out_to_users(stream) -> None:
    await process_internal(stream, "notification-users", apply_user_record)


# --- due work: digests and quiet-hour releases ------------------------------------------------------------


async def release_digest(user_id: str, now: datetime) -> None:
    held = digests.get(user_id)
    if not held or not any(held["items"].values()):
        return
    prefs = preferences_of(user_id)
    due = digest_due(prefs, now, held["last_day"])
    if due is None:
        return
    day, at = due
    # Marked before the sends: both commit in this record's transaction, or neither does.
    digests[user_id] = {"items": {}, "last_day": day}
    contact = prefs.contact_for_delivery()
    for channel in CHANNELS:
        items = held["items"].get(channel)
        if items:
            await send_request(digest_request(user_id, channel, day, at, items, contact))


async def release_deferred(user_id: str, now: datetime) -> None:
    waiting = deferred.get(user_id) or []
    due = [w for w in waiting if datetime.fromisoformat(w["release_at"]) <= now]
    if not due:
        return
    rest = [w for w in waiting if w not in due]
    deferred[user_id] = rest or None
    for w in due:
        await send_raw(w["channel"], user_id, w["request"].encode())


TIMER_OPS: dict[str, Any] = {"digest": release_digest, "deferred": release_deferred}


def register_timer_op(op: str, handler) -> None:
    TIMER_OPS[op] = handler


async def apply_timer_record(record) -> None:
    data = orjson.loads(record.value)
    await TIMER_OPS[data["op"]](data["key"], CLOCK.now())


@app.agent(timers_topic, name="notification-timers")
async def due_work(stream) -> None:
    await process_internal(stream, "notification-timers", apply_timer_record)


# A tick already sent for a key is not repeated for a while: the handler may still be on its way.
_recent_ticks: dict[tuple[str, str], float] = {}
TICK_REPEAT_S = 15.0


async def tick(op: str, key: str) -> None:
    mark = (op, key)
    sent = _recent_ticks.get(mark)
    if sent is not None and time.monotonic() - sent < TICK_REPEAT_S:
        return
    _recent_ticks[mark] = time.monotonic()
    await send_tick(key, {"op": op, "key": key})


def due_digest_users(now: datetime) -> list[str]:
    due = []
    for user_id, held in digests.items():
        if held and any(held["items"].values()) and digest_due(preferences_of(user_id), now, held["last_day"]):
            due.append(user_id)
    return due


def due_deferred_users(now: datetime) -> list[str]:
    return [
        user_id
        for user_id, waiting in deferred.items()
        if waiting and min(datetime.fromisoformat(w["release_at"]) for w in waiting) <= now
    ]


@app.timer(SETTINGS.notifications_tick_s)
async def find_due_user_work() -> None:
    if app.rebalancing:
        return
    now = CLOCK.now()
    NOTIFICATION_CLOCK.set(now.timestamp())
    for user_id in due_digest_users(now):
        await tick("digest", user_id)
    for user_id in due_deferred_users(now):
        await tick("deferred", user_id)
    if len(_recent_ticks) > 10_000:
        cutoff = time.monotonic() - TICK_REPEAT_S
        for mark in [m for m, t in _recent_ticks.items() if t < cutoff]:
            del _recent_ticks[mark]
