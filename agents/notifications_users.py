"""Per-user fan-out: preferences applied, one delivery request per (user, channel), digests and quiet hours.

Tables, all keyed by user id and co-partitioned with the notification-users topic (no remote lookups):
  ``notification-preferences``  user -> validated preferences (from the compacted preferences topic)
  ``notification-directory``    user -> 1; everyone known, walked partition by partition by broadcasts
  ``notification-digests``      user -> {"items": {channel: [DigestItem]}, "last_day": local day last sent}
  ``notification-deferred``     user -> [{"release_at", "request"}] waiting for quiet hours to end
  ``notification-throttles``    user -> {"<type>|<tournament>": ThrottleState} of the catalog's throttled types

A notify record carries a notice and the users of its partition (``users``; one ``user`` in records written
before the batching). Each user's preferences and directory entry are served from memory (``MEMORY``): read
from the table once, then kept current by this worker's own writes — only the preferences agent writes the
preferences and only these agents the directory, for the partitions this worker owns — and forgotten on any
revoke, as the tables may have moved or changed by standby replication. A record's delivery requests go out as
one record batch per (channel, partition) once all its users are done (``Outbox``).

A worker's timer (every CROWNSTREAM_NOTIFICATIONS_TICK_S) looks at its own users for due digests, quiet-hour
releases and throttled notices nothing followed (notifications/throttle.py), and sends a tick to
notification-timers; the tick's handler re-checks and emits in its transaction.
"last_day" is committed with the digest it sent, so a digest goes out at most once per user per local day,
whatever restarts and duplicate ticks happen.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import orjson

from crownstream.agents.decoding import (
    RejectRecord,
    handler_error,
    input_topic,
    process_events,
    process_internal,
    send_to_dead_letter,
)
from crownstream.agents.errors import UnknownOp as UnknownOp
from crownstream.agents.notifications_common import (
    CLOCK,
    USER_PARTITIONS,
    USERS,
    send,
    send_records,
    send_tick,
    timers_topic,
    users_topic,
)
from crownstream.app import app
from crownstream.metrics import NOTIFICATION_CLOCK, NOTIFICATION_HELD, NOTIFICATION_REQUESTS, NOTIFICATION_SKIPPED
from crownstream.notifications.catalog import CATALOG, Notice, NotificationType
from crownstream.notifications.clock import digest_due
from crownstream.notifications.preferences import InvalidPreferences, Preferences, parse_preferences
from crownstream.notifications.recipients import Profiles, Recipient
from crownstream.notifications.requests import RequestTemplate, digest_item, digest_request
from crownstream.notifications.routing import Route
from crownstream.notifications.throttle import (
    Fold,
    Send,
    ThrottleState,
    carrying,
    decide,
    forget_idle,
    key_of,
    release,
    release_due,
    type_of,
)
from crownstream.schemas.codec import Rejection
from crownstream.schemas.deliveries import CHANNELS
from crownstream.settings import get_settings
from crownstream.streams.partitioning import partition_for
from crownstream.streams.topics import DELIVERIES, NOTIFICATION_USERS, PREFERENCES

log = logging.getLogger(__name__)
PARTITIONS = NOTIFICATION_USERS.partition_count()
SETTINGS = get_settings()
AGENT = "notification-users"

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
throttles = app.Table(
    "notification-throttles", default=None, partitions=PARTITIONS, help="user -> per type and tournament, its throttle"
)

delivery_topic_names = {channel: spec.full_name() for channel, spec in DELIVERIES.items()}
delivery_partitions = {channel: spec.partition_count() for channel, spec in DELIVERIES.items()}
preferences_topic = input_topic(PREFERENCES)


class UsersInMemory:
    """This worker's users as fan-out reads them: their recipients (preferences) and who is in the directory.
    Bounded: past ``limit`` users it starts over from the tables rather than grow without end."""

    def __init__(self, limit: int = 2_000_000) -> None:
        self.limit = limit
        self.profiles = Profiles()
        self.recipients: dict[str, Recipient] = {}
        self.known: set[str] = set()

    def clear(self) -> None:
        self.profiles.clear()
        self.recipients.clear()
        self.known.clear()

    def keep(self, user_id: str, entry: Recipient) -> None:
        if len(self.recipients) >= self.limit or len(self.profiles) >= self.limit // 10:
            self.recipients.clear()
            self.profiles.clear()
        self.recipients[user_id] = entry

    def mark_known(self, user_id: str) -> None:
        if len(self.known) >= self.limit:
            self.known.clear()
        self.known.add(user_id)


MEMORY = UsersInMemory()


@app.on_partitions_revoked.connect
async def _forget_users(sender, revoked, **kwargs) -> None:
    # Memory mirrors the tables of the partitions this worker owns; after a rebalance they may have moved here
    # with changes made elsewhere (standby replication), so start again from the tables.
    MEMORY.clear()


def recipient(user_id: str, keep: bool = True) -> Recipient:
    """The user's preferences as fan-out needs them (the defaults if they never set any). ``keep=False`` for a
    read outside a record of an owned partition (the timer walks standby partitions too)."""
    entry = MEMORY.recipients.get(user_id)
    if entry is None:
        stored = preferences.get(user_id)
        entry = MEMORY.profiles.default if stored is None else MEMORY.profiles.from_stored(stored)
        if keep:
            MEMORY.keep(user_id, entry)
    return entry


def preferences_of(user_id: str) -> Preferences:
    """The user's full preferences, contact included (validated from the table)."""
    stored = preferences.get(user_id)
    return Preferences.model_validate(stored) if stored is not None else MEMORY.profiles.default.prefs


def remember(user_id: str) -> None:
    """The user is in the directory (all-users broadcasts reach them)."""
    if user_id in MEMORY.known:
        return
    if directory.get(user_id) is None:
        directory[user_id] = 1
    MEMORY.mark_known(user_id)


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
    remember(event.user_id)
    MEMORY.keep(event.user_id, MEMORY.profiles.from_prefs(prefs))  # last: only once the event's writes are made


@app.agent(preferences_topic, name="notification-preferences")
async def fold_preferences(stream) -> None:
    await process_events(stream, "notification-preferences", apply_preferences)


class Outbox:
    """One record's delivery requests, sent together at its end: one record batch per (channel, partition), and
    the metrics counted once per label instead of once per request.

    ``user_partition``: the notification-users partition every user of the record belongs to, when known. The
    delivery topics are keyed by user id with the same partitioner, so with as many partitions it is each
    request's partition too, without hashing every user id again."""

    __slots__ = ("batches", "counts", "held", "skipped", "user_partition")

    def __init__(self, user_partition: int | None = None) -> None:
        self.user_partition = user_partition
        self.batches: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.skipped: collections.Counter[tuple[str, str]] = collections.Counter()
        self.held: collections.Counter[str] = collections.Counter()

    def add(self, channel: str, user_id: str, value: bytes, kind: str = "single") -> None:
        count = delivery_partitions[channel]
        if self.user_partition is not None and count == USER_PARTITIONS:
            partition = self.user_partition
        else:
            partition = partition_for(user_id, count)
        batch = self.batches.get((channel, partition))
        if batch is None:
            batch = self.batches[(channel, partition)] = []
        batch.append((user_id.encode(), value))
        self.counts[(channel, kind)] += 1

    async def flush(self) -> None:
        batches, self.batches = self.batches, {}
        for (channel, partition), records in sorted(batches.items()):
            await send_requests(channel, partition, records)
        for (channel, kind), n in self.counts.items():
            NOTIFICATION_REQUESTS.labels(channel, kind).inc(n)
        for (channel, reason), n in self.skipped.items():
            NOTIFICATION_SKIPPED.labels(channel, reason).inc(n)
        for mode, n in self.held.items():
            NOTIFICATION_HELD.labels(mode).inc(n)
        self.counts.clear()
        self.skipped.clear()
        self.held.clear()


async def send_requests(channel: str, partition: int, records: list[tuple[bytes, bytes]]) -> None:
    """(user id, encoded request) records to the channel's delivery topic partition, as one record batch in the
    input partition's transaction."""
    await send_records(delivery_topic_names[channel], partition, records)


def notify(user_id: str, notice: Notice, now: datetime, out: Outbox) -> None:
    entry = recipient(user_id)
    kind = CATALOG[notice.notification_type]
    resolution = entry.resolve(kind, now)
    for skip in resolution.skipped:
        if skip.reason != "not_selected":
            out.skipped[(skip.channel, skip.reason)] += 1
    for route in resolution.routes:
        if route.mode == "digest":
            held = dict(digests.get(user_id) or {"items": {}, "last_day": None})
            items = dict(held["items"])
            items[route.channel] = [
                *items.get(route.channel, []),
                digest_item(notice, SETTINGS.notifications_link_base),
            ]
            digests[user_id] = {**held, "items": items}
            out.held["digest"] += 1
    # The digest holds every item; what goes out at once (or after quiet hours) passes the type's throttle first.
    routes = [r for r in resolution.routes if r.mode != "digest"]
    if not routes:
        return
    if kind.throttle is not None and kind.name not in entry.prefs.unthrottled_types:
        decision = throttle(user_id, kind, notice, now)
        if isinstance(decision, Fold):
            out.held["throttled"] += 1
            return
        if decision.carry is not None:
            carrier = carrying(notice, kind.throttle, decision.carry)
            route_notice(user_id, carrier, routes, out, entry.contact, shared=False)
            return
    route_notice(user_id, notice, routes, out, entry.contact)


def route_notice(
    user_id: str, notice: Notice, routes: list[Route], out: Outbox, contact: bytes, shared: bool = True
) -> None:
    """``notice``'s requests on ``routes`` (single or deferred), from the template shared by the notice's recipients;
    ``shared=False`` for a notice of this user's alone (one carrying their folded count), never cached."""
    for route in routes:
        if shared:
            value = template_for(notice, route.channel).render(user_id, contact)
        else:
            value = RequestTemplate(notice, route.channel, SETTINGS.notifications_link_base).render(user_id, contact)
        if route.mode == "deferred":
            assert route.release_at is not None  # routing sets it for every deferred route
            waiting = list(deferred.get(user_id) or [])
            waiting.append(
                {"release_at": route.release_at.isoformat(), "channel": route.channel, "request": value.decode()}
            )
            deferred[user_id] = waiting
            out.held["deferred"] += 1
        else:
            out.add(route.channel, user_id, value)


def throttle(user_id: str, kind: NotificationType, notice: Notice, now: datetime) -> Send | Fold:
    """The throttle's decision for ``notice`` (of a throttled type) to ``user_id``, its state written back (with the
    user's long-idle keys dropped)."""
    assert kind.throttle is not None
    stored = throttles.get(user_id) or {}
    key = key_of(notice)
    state = ThrottleState.from_dict(stored[key]) if key in stored else ThrottleState()
    decision, state = decide(kind.throttle, state, notice, now)
    throttles[user_id] = forget_idle({**stored, key: state.to_dict()}, key, notice.created_at)
    return decision


async def notify_users(record, users: list[str], notice: Notice, now: datetime, *, known: bool) -> None:
    """``notice`` to each of ``users`` (all of ``record``'s partition). One user's failure does not stop the
    others: that user's share of the record goes to the dead-letter topic with the reason, replayable alone,
    as when each user had a record of their own. ``known``: the users come from the directory itself."""
    out = Outbox(record.message.partition)
    failed: list[tuple[str, Exception]] = []
    for user_id in users:
        try:
            if not known:
                remember(user_id)
            notify(user_id, notice, now, out)
        except Exception as exc:  # a bug or a corrupt stored value, this user's alone
            failed.append((user_id, exc))
    await out.flush()
    for user_id, exc in failed:
        await dead_letter_user(record, user_id, notice, exc)


async def dead_letter_user(record, user_id: str, notice: Notice, exc: Exception) -> None:
    log.error("notify failed for one user; their share dead-lettered", extra={"agent": AGENT, "user": user_id})
    share = orjson.dumps({"op": "notify", "notice": notice.to_dict(), "users": [user_id]})
    copy = SimpleNamespace(key=user_id.encode(), value=share, message=record.message)
    await send_to_dead_letter(copy, handler_error(exc), AGENT)


def _partition_users(partition: int, after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` user ids of the directory's ``partition``, in key order, after ``after``.

    Faust's table API iterates every partition at once; a broadcast step needs one partition from a
    cursor, so this reads that partition's RocksDB (rocksdict) store directly. Keys are stored as the
    table's key serializer writes them (JSON strings).
    """
    directory.flush_batch_writes()  # users the current micro-batch added are not in the store until then
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


async def broadcast_step(record, data: dict[str, Any], now: datetime) -> None:
    partition = record.message.partition
    chunk = SETTINGS.notifications_broadcast_chunk
    batch = _partition_users(partition, data["after"], chunk)
    notice = Notice.from_dict(data["notice"])
    await notify_users(record, batch, notice, now, known=True)
    if len(batch) == chunk:
        # The next step queues behind whatever arrived meanwhile: other users' notices are not blocked.
        await send(USERS, f"broadcast:{partition}".encode(), orjson.dumps({**data, "after": batch[-1]}), partition)
        request_commit()


# A broadcast's next step is read read_committed, so it waits for the commit of the step that sent it: at the
# commit interval (seconds), a broadcast would advance one step per partition per interval. A step therefore
# asks for a commit as soon as it is acknowledged (the request runs after the agent moves on, which acknowledges
# the step; a commit already running takes it instead).
_commit_wanted = False
_commit_task: asyncio.Task[None] | None = None


def request_commit() -> None:
    global _commit_wanted, _commit_task
    _commit_wanted = True
    if _commit_task is None or _commit_task.done():
        # A context of its own, as Faust's commit timer has: not the step's, whose current event would route
        # what the commit flushes into the step's partition's transaction (crownstream/engine/transactions.py).
        _commit_task = asyncio.get_running_loop().create_task(_commit_soon(), context=contextvars.Context())


async def _commit_soon() -> None:
    global _commit_wanted
    while _commit_wanted:
        _commit_wanted = False
        if app.rebalancing or app.consumer.should_stop:
            return  # the rebalance's or the stop's own commit takes it
        try:
            await app.consumer.commit()
        except Exception as exc:  # the timer's next commit meets it too, and handles it as Faust does
            log.warning("early commit for a broadcast step failed", extra={"error": repr(exc)[:300]})
            return


async def apply_user_record(record) -> None:
    # Written only by our own agents: a record we cannot read or apply is a bug, dead-lettered with the reason
    # by process_internal (it neither stops every user's notices behind it nor vanishes).
    data = orjson.loads(record.value)
    op = data["op"]
    now = CLOCK.now()
    if op == "notify":
        notice = Notice.from_dict(data["notice"])  # before any write: an unreadable notice changes nothing
        users = data["users"] if "users" in data else [data["user"]]
        await notify_users(record, users, notice, now, known=False)
    elif op == "known":
        for user_id in data["users"] if "users" in data else [data["user"]]:
            remember(user_id)
    elif op == "broadcast_step":
        await broadcast_step(record, data, now)
    else:
        raise UnknownOp(f"unknown notification-users op {str(op)[:64]!r}")


@app.agent(users_topic, name=AGENT)
async def fan_out_to_users(stream) -> None:
    await process_internal(stream, AGENT, apply_user_record)


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
    out = Outbox()
    for channel in CHANNELS:
        items = held["items"].get(channel)
        if items:
            out.add(channel, user_id, digest_request(user_id, channel, day, at, items, contact).encode(), "digest")
    await out.flush()


async def release_deferred(user_id: str, now: datetime) -> None:
    waiting = deferred.get(user_id) or []
    due = [w for w in waiting if datetime.fromisoformat(w["release_at"]) <= now]
    if not due:
        return
    rest = [w for w in waiting if w not in due]
    deferred[user_id] = rest or None
    out = Outbox()
    for w in due:
        out.add(w["channel"], user_id, w["request"].encode())
    await out.flush()


async def release_throttled(user_id: str, now: datetime) -> None:
    """The user's throttled notices that nothing followed, due now: each key's newest folded notice goes out,
    carrying the others, routed by the user's preferences as of now (its digest routes already hold it)."""
    stored = throttles.get(user_id)
    if not stored:
        return
    due = sorted(key for key, value in stored.items() if release_due(ThrottleState.from_dict(value), now))
    if not due:
        return
    entry = recipient(user_id)
    updated = dict(stored)
    out = Outbox()
    for key in due:
        kind = CATALOG[type_of(key)]
        state = ThrottleState.from_dict(stored[key])
        if kind.throttle is None:  # the catalog dropped the type's throttle since: what it held goes out as it was
            notice, carry = state.held, None
            del updated[key]
        else:
            released = release(kind.throttle, state)
            if released is None:
                continue
            notice, carry, after = released
            updated[key] = after.to_dict()
        if notice is None:
            continue
        if carry is not None and kind.throttle is not None:
            notice = carrying(notice, kind.throttle, carry)
        routes = [r for r in entry.resolve(kind, now).routes if r.mode != "digest"]
        route_notice(user_id, notice, routes, out, entry.contact, shared=False)
    throttles[user_id] = updated  # in this record's transaction with the sends: released once
    await out.flush()


TIMER_OPS: dict[str, Any] = {"digest": release_digest, "deferred": release_deferred, "throttle": release_throttled}


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
        if (
            held
            and any(held["items"].values())
            and digest_due(recipient(user_id, keep=False).prefs, now, held["last_day"])
        ):
            due.append(user_id)
    return due


def due_deferred_users(now: datetime) -> list[str]:
    return [
        user_id
        for user_id, waiting in deferred.items()
        if waiting and min(datetime.fromisoformat(w["release_at"]) for w in waiting) <= now
    ]


def due_throttle_users(now: datetime) -> list[str]:
    # The stored fields read as they are: this runs over every user each tick.
    return [
        user_id
        for user_id, stored in throttles.items()
        if stored
        and any(
            state.get("held") is not None and datetime.fromisoformat(state["release_after"]) <= now
            for state in stored.values()
        )
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
    for user_id in due_throttle_users(now):
        await tick("throttle", user_id)
    if len(_recent_ticks) > 10_000:
        cutoff = time.monotonic() - TICK_REPEAT_S
        for mark in [m for m, t in _recent_ticks.items() if t < cutoff]:
            del _recent_ticks[mark]
