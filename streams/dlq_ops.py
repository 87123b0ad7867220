"""Operator actions on the dead-letter topic: read it back, replay records to their source topics."""

from __future__ import annotations

from contextlib import aclosing

from aiokafka import AIOKafkaProducer

from crownstream.settings import Settings, get_settings
from crownstream.streams.dead_letter import DeadLetter
from crownstream.streams.reading import read_topics
from crownstream.streams.topics import DEAD_LETTER


async def read_dead_letters(
    *, from_offset: int = 0, limit: int | None = None, settings: Settings | None = None
) -> list[DeadLetter]:
    """Every DLQ record from ``from_offset`` up to the end as of now (no consumer group, commits nothing)."""
    letters: list[DeadLetter] = []
    async with aclosing(read_topics([DEAD_LETTER], settings=settings, from_offset=from_offset)) as records:
        async for r in records:
            if limit is not None and len(letters) >= limit:
                break
            letters.append(DeadLetter.from_record(r.offset, r.key, r.value, r.headers))
    return letters


async def replay_dead_letters(
    *, from_offset: int = 0, code: str | None = None, dry_run: bool = False, settings: Settings | None = None
) -> int:
    settings = settings or get_settings()
    letters = [
        letter
        for letter in await read_dead_letters(from_offset=from_offset, settings=settings)
        # A truncated copy (an oversized original: streams/dead_letter.py) is not the record; replaying its
        # head would only dead-letter it again as not_json.
        if (code is None or letter.code == code) and letter.source_topic and not letter.truncated
    ]
    if dry_run or not letters:
        return len(letters)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for letter in letters:
            await producer.send(
                letter.source_topic,
                key=letter.key,
                value=letter.value,
                headers=[("dlq.replayed_from", str(letter.dlq_offset).encode())],
            )
        await producer.flush()
    finally:
        await producer.stop()
    return len(letters)
