"""Helpers of the sinks' integration tests: a migrated database, delivery requests, producing them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from crownstream.schemas.deliveries import Contact, DeliveryRequest, dedup_key
from crownstream.settings import Settings
from crownstream.streams.topics import DELIVERIES

T0 = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)


async def migrate(database_url: str) -> None:
    from crownstream.sinks import db

    # Alembic's env.py runs its own event loop: not on the test's.
    await asyncio.to_thread(db.upgrade, database_url)


def make_request(
    i: int,
    channel: str,
    user: str = "u1",
    *,
    notification_type: str = "match.result",
    contact: Contact | None = None,
    **overrides,
) -> DeliveryRequest:
    source = f"evt-{i}"
    fields = dict(
        dedup_key=dedup_key(source, user, channel, notification_type),
        channel=channel,
        notification_type=notification_type,
        user_id=user,
        source_event_id=source,
        tournament_id="cup",
        created_at=T0,
        title=f"Notification {i}",
        body=f"Body of notification {i}",
        url=f"https://crownstream.example/n/{i}",
        data={"match": i},
        contact=contact or Contact(email=f"{user}@example.com", display_name=user),
    )
    return DeliveryRequest(**{**fields, **overrides})


async def produce(
    settings: Settings, requests: Iterable[DeliveryRequest], raw: Iterable[tuple[str, bytes]] = ()
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        for r in requests:
            await producer.send(DELIVERIES[r.channel].full_name(settings), key=r.user_id.encode(), value=r.encode())
        for channel, value in raw:
            await producer.send(DELIVERIES[channel].full_name(settings), key=b"u-bad", value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def eventually(
    check: Callable[[], object], timeout: float = 60.0, interval: float = 0.2, what: str = ""
) -> object:
    """Poll ``check`` (sync or async) until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


async def read_delivery_dead_letters(settings: Settings) -> list[tuple[dict[str, str], bytes]]:
    """Every committed record of the delivery dead-letter topic: (headers, value)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from crownstream.streams.topics import DELIVERY_DEAD_LETTER

    topic = DELIVERY_DEAD_LETTER.full_name(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                out += [({k: v.decode() for k, v in r.headers}, r.value) for r in records]
        return out
    finally:
        await consumer.stop()


def sink_worker_overrides(database_url: str, **extra) -> dict:
    """Worker settings of the sinks' tests: loopback targets allowed, fast retries, short leases."""
    return {
        "database_url": database_url,
        "sink_allow_private_targets": True,
        "sink_backoff_base_s": 0.2,
        "sink_backoff_max_s": 1.0,
        "sink_max_attempts": 4,
        "sink_circuit_open_s": 0.5,
        "sink_circuit_open_max_s": 2.0,
        "sink_poll_interval_s": 0.2,
        "sink_lease_s": 5.0,
        "staff_token": "test-token",
        "processing_guarantee": "exactly_once",
        **extra,
    }


class SinkRun:
    """A sink with its dispatcher against the real ledger, no broker (``async with``): dead letters collected in
    ``dead``; ``on_exhausted`` as the worker wires it."""

    def __init__(self, sink, settings: Settings, on_exhausted=None) -> None:
        from crownstream.sinks.base import Dispatcher

        self.dead: list = []
        self.sink = sink

        async def dead_letter(claimed, outcome):
            self.dead.append((claimed, outcome))

        self.dispatcher = Dispatcher(sink, settings, dead_letter, on_exhausted=on_exhausted)

    async def __aenter__(self):
        await self.sink.start()
        self.dispatcher.start()
        return self

    async def __aexit__(self, *exc):
        await self.dispatcher.stop()
        await self.sink.stop()
