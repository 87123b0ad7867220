"""What the notification agents share: their internal topics, the clock, and how a notice travels.

A notice moves through at most three hops, each a Kafka topic keyed by whoever holds the state it needs,
so no step reads another worker's table:

  source event ──> notification-audiences (team / tournament key: membership tables)
               ──> notification-users     (user key: preferences, digests; co-partitioned with both)
               ──> deliveries.<channel>   (user key: the sinks)

Every record here is sent while processing an input record, so it joins that input partition's
transaction (crownstream/engine/transactions.py): a crash never emits a hop without committing the input, or
the reverse. Internal records are orjson dicts with an ``op``.

A notice for many users travels as one record per user partition carrying that partition's users (``to_users``),
placed with the partitioner the users topic is keyed by (streams/partitioning.py): each record lands on the
partition that owns every one of its users' state. Records go out through ``send_batch`` (one append to a
record batch in the input partition's transaction), not through Faust's per-record send path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from crownstream import engine
from crownstream.app import app
from crownstream.metrics import NOTIFICATION_NO_AUDIENCE
from crownstream.notifications.catalog import Notice, Target
from crownstream.notifications.clock import Clock, ShiftedClock
from crownstream.settings import get_settings
from crownstream.streams.partitioning import partition_for
from crownstream.streams.topics import NOTIFICATION_AUDIENCES, NOTIFICATION_TIMERS, NOTIFICATION_USERS, TopicSpec
from crownstream.tracing.propagation import outgoing_headers

log = logging.getLogger(__name__)


def _topic(spec: TopicSpec):
    return app.topic(spec.full_name(), key_serializer="raw", value_serializer="raw", partitions=spec.partition_count())


audiences_topic = _topic(NOTIFICATION_AUDIENCES)
users_topic = _topic(NOTIFICATION_USERS)
timers_topic = _topic(NOTIFICATION_TIMERS)
USER_PARTITIONS = NOTIFICATION_USERS.partition_count()
USERS, AUDIENCES = users_topic.get_topic_name(), audiences_topic.get_topic_name()
PARTITIONS = {USERS: USER_PARTITIONS, AUDIENCES: NOTIFICATION_AUDIENCES.partition_count()}
# Users per notify record: a tournament's audience on one partition stays well under the producer's request size.
MAX_USERS_PER_RECORD = 2000


def make_clock() -> Clock:
    s = get_settings()
    return ShiftedClock(s.clock_start, s.clock_speed) if s.clock_start is not None else Clock()


CLOCK: Clock = make_clock()


def dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


async def send(topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
    """One record to ``topic``, on ``partition`` or else where its key belongs (the partitioner the topic is
    keyed by), in the transaction of the input partition being processed."""
    if partition is None:
        partition = partition_for(key.decode(), PARTITIONS[topic])
    await send_records(topic, partition, [(key, value)])


async def send_records(topic: str, partition: int, records: list[tuple[bytes, bytes]]) -> None:
    """(key, value) records to one partition: one record batch in the input partition's transaction."""
    headers = outgoing_headers()  # the trace context of the record being processed
    if app.in_transaction:
        await engine.send_batch(app, topic, partition, records, headers)
    else:  # at_least_once: no transaction to append to; straight to the producer
        producer = await app.maybe_start_producer()
        for key, value in records:
            await producer.send(topic, key, value, partition, None, headers)


def by_partition(keys: Iterable[str], topic: str) -> dict[int, list[str]]:
    """Keys grouped by the partition of ``topic`` they are keyed to, each group in the given order."""
    count = PARTITIONS[topic]
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(partition_for(key, count), []).append(key)
    return groups


async def to_users(user_ids: Iterable[str], record: dict[str, Any]) -> None:
    """``record`` (an op) for every user in ``user_ids``: one record per user partition, carrying the list of
    that partition's users under ``users``."""
    for partition, users in sorted(by_partition(user_ids, USERS).items()):
        for start in range(0, len(users), MAX_USERS_PER_RECORD):
            part = users[start : start + MAX_USERS_PER_RECORD]
            await send(USERS, part[0].encode(), dumps({**record, "users": part}), partition)


async def to_audience(key: str, record: dict[str, Any], partition: int | None = None) -> None:
    """``partition``: when ``record`` is for several keys of one partition (named by ``key``, one of them)."""
    await send(AUDIENCES, key.encode(), dumps(record), partition)


async def dispatch(notice: Notice, target: Target) -> None:
    """Send a notice on towards everyone in ``target``; users named directly are not told twice through
    their team (``exclude``)."""
    if target.empty:
        NOTIFICATION_NO_AUDIENCE.labels(notice.notification_type).inc()
        return
    n = notice.to_dict()
    users = list(dict.fromkeys(target.users))
    await to_users(users, {"op": "notify", "notice": n})
    for partition, teams in sorted(by_partition(dict.fromkeys(target.teams), AUDIENCES).items()):
        await to_audience(teams[0], {"op": "resolve_team", "teams": teams, "notice": n, "exclude": users}, partition)
    for tournament_id in dict.fromkeys(target.tournaments):
        await to_audience(tournament_id, {"op": "resolve_tournament", "tournament": tournament_id, "notice": n})
    if target.all_users:
        await start_broadcast(n)


async def start_broadcast(notice: dict[str, Any]) -> None:
    """An all-users notice becomes one step per user partition: each partition's owner walks its own
    directory of users in chunks (agents/notifications_users.py), so nobody holds the whole audience and
    other users' events run between the steps."""
    for partition in range(USER_PARTITIONS):
        await send(
            USERS,
            f"broadcast:{partition}".encode(),
            dumps({"op": "broadcast_step", "notice": notice, "after": None}),
            partition,
        )


# Timer ticks are sent outside any input record (from app.timer), so they cannot join a transaction; they
# only say "look at this key now" and their handler re-checks everything in its own transaction, so a
# duplicate or lost tick changes nothing but timing. A plain idempotent producer, started on first use.
_tick_producer: AIOKafkaProducer | None = None


async def send_tick(key: str, record: dict[str, Any]) -> None:
    global _tick_producer
    if _tick_producer is None:
        producer = AIOKafkaProducer(
            bootstrap_servers=get_settings().kafka_bootstrap, enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        _tick_producer = producer
    await _tick_producer.send(timers_topic.get_topic_name(), dumps(record), key=key.encode())


@app.on_before_shutdown.connect
async def _stop_tick_producer(sender, **kwargs) -> None:
    global _tick_producer
    if _tick_producer is not None:
        producer, _tick_producer = _tick_producer, None
        await producer.stop()
