"""What the notification agents share: their internal topics, the clock, and how a notice travels.

A notice moves through at most three hops, each a Kafka topic keyed by whoever holds the state it needs,
so no step reads another worker's table:

  source event ──> notification-audiences (team / tournament key: membership tables)
               ──> notification-users     (user key: preferences, digests; co-partitioned with both)
               ──> deliveries.<channel>   (user key: the sinks)

Every record here is sent while processing an input record, so it joins that input partition's
transaction (crownstream/engine/transactions.py): a crash never emits a hop without committing the input, or
the reverse. Internal records are orjson dicts with an ``op``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from crownstream.app import app
from crownstream.metrics import NOTIFICATION_NO_AUDIENCE
from crownstream.notifications.catalog import Notice, Target
from crownstream.notifications.clock import Clock, ShiftedClock
from crownstream.settings import get_settings
from crownstream.streams.topics import NOTIFICATION_AUDIENCES, NOTIFICATION_TIMERS, NOTIFICATION_USERS, TopicSpec

log = logging.getLogger(__name__)


def _topic(spec: TopicSpec):
    return app.topic(spec.full_name(), key_serializer="raw", value_serializer="raw", partitions=spec.partition_count())


audiences_topic = _topic(NOTIFICATION_AUDIENCES)
users_topic = _topic(NOTIFICATION_USERS)
timers_topic = _topic(NOTIFICATION_TIMERS)
USER_PARTITIONS = NOTIFICATION_USERS.partition_count()
USERS, AUDIENCES = users_topic.get_topic_name(), audiences_topic.get_topic_name()


def make_clock() -> Clock:
    s = get_settings()
    return ShiftedClock(s.clock_start, s.clock_speed) if s.clock_start is not None else Clock()


CLOCK: Clock = make_clock()


def dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


async def send(topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
    """Straight to the producer Faust would use (under exactly_once, the transaction of the input partition
    being processed): Topic.send's per-message bookkeeping costs more than a fan-out step itself."""
    producer = await app.maybe_start_producer()
    await producer.send(topic, key, value, partition, None, None)


async def to_user(user_id: str, record: dict[str, Any]) -> None:
    await send(USERS, user_id.encode(), dumps({**record, "user": user_id}))


async def to_audience(key: str, record: dict[str, Any]) -> None:
    await send(AUDIENCES, key.encode(), dumps(record))


async def dispatch(notice: Notice, target: Target) -> None:
    """Send a notice on towards everyone in ``target``; users named directly are not told twice through
    their team (``exclude``)."""
    if target.empty:
        NOTIFICATION_NO_AUDIENCE.labels(notice.notification_type).inc()
        return
    n = notice.to_dict()
    users = list(dict.fromkeys(target.users))
    for user_id in users:
        await to_user(user_id, {"op": "notify", "notice": n})
    for team_id in dict.fromkeys(target.teams):
        await to_audience(team_id, {"op": "resolve_team", "team": team_id, "notice": n, "exclude": users})
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
