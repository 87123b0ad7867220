"""The delivery dead-letter topic: requests that were invalid or that failed their last attempt.

Each record is the request's JSON with headers saying why (the same ``dlq.*`` header names as the event
DLQ) plus the channel and target. ``crownstream deliveries replay`` puts them back on their channel's topic
with a ``crownstream.replay`` header, which tells the agent to give a dead ledger row a fresh attempt budget
(an ordinary duplicate of a dead request must not revive it).
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from crownstream.settings import Settings, get_settings
from crownstream.sinks.ledger import Claimed, Outcome
from crownstream.streams.dead_letter import (
    HEADER_AGENT,
    HEADER_CODE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TOPIC,
    HEADER_VALUE_TRUNCATED,
    PRODUCER_MAX_REQUEST_SIZE,
    fit_dead_letter,
)
from crownstream.streams.reading import read_topics
from crownstream.streams.topics import DELIVERIES, DELIVERY_DEAD_LETTER

HEADER_CHANNEL = "dlq.delivery.channel"
HEADER_TARGET = "dlq.delivery.target"
HEADER_ATTEMPTS = "dlq.delivery.attempts"
REPLAY_HEADER = "crownstream.replay"


def failed_headers(claimed: Claimed, outcome: Outcome, settings: Settings) -> list[tuple[str, bytes]]:
    return [
        (HEADER_CODE, outcome.reason_code.encode()),
        (HEADER_REASON, (outcome.error or "").encode()[:8000]),
        (HEADER_TOPIC, DELIVERIES[claimed.request.channel].full_name(settings).encode()),
        (HEADER_PARTITION, b"-1"),
        (HEADER_OFFSET, b"-1"),
        (HEADER_AGENT, b"deliveries"),
        (HEADER_CHANNEL, claimed.request.channel.encode()),
        (HEADER_TARGET, claimed.target.encode()),
        (HEADER_ATTEMPTS, str(claimed.attempt).encode()),
    ]


class DeliveryDeadLetters:
    """Producer of the delivery DLQ for dispatchers (they run outside any consumed event's transaction)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = DELIVERY_DEAD_LETTER.full_name(settings)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            max_request_size=PRODUCER_MAX_REQUEST_SIZE,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_raw(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        # Fitted as the event DLQ's copies are: a copy the producer refused would be lost with its reason.
        copy = fit_dead_letter(key, value, headers, PRODUCER_MAX_REQUEST_SIZE)
        await self._producer.send_and_wait(self.topic, key=copy.key, value=copy.value, headers=copy.headers)

    async def __call__(self, claimed: Claimed, outcome: Outcome) -> None:
        await self.send_raw(
            claimed.request.user_id.encode(), claimed.request.encode(), failed_headers(claimed, outcome, self.settings)
        )


async def replay(
    settings: Settings | None = None, channel: str | None = None, from_offset: int = 0, dry_run: bool = False
) -> int:
    """Put dead-lettered delivery requests back on their channel's topic (marked as a replay)."""
    settings = settings or get_settings()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    count = 0
    try:
        async for record in read_topics([DELIVERY_DEAD_LETTER], settings=settings, from_offset=from_offset):
            headers = {k: v.decode(errors="replace") for k, v in record.headers or []}
            record_channel = headers.get(HEADER_CHANNEL)
            if record_channel not in DELIVERIES or (channel and record_channel != channel):
                continue  # invalid requests have no channel: fix the producer and re-send instead
            if headers.get(HEADER_VALUE_TRUNCATED) == "true":
                continue  # only the head of an oversized request was kept: it is not the request
            count += 1
            if not dry_run:
                await producer.send(
                    DELIVERIES[record_channel].full_name(settings),
                    key=record.key,
                    value=record.value,
                    headers=[(REPLAY_HEADER, b"1")],
                )
        await producer.flush()
        return count
    finally:
        await producer.stop()
