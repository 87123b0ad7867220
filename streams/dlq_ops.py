"""Operator actions on the dead-letter topic: read it back, replay records to their source topics."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from crownstream.settings import Settings, get_settings
from crownstream.streams.dead_letter import DeadLetter
from crownstream.streams.topics import DEAD_LETTER


async def read_dead_letters(
    *, from_offset: int = 0, limit: int | None = None, settings: Settings | None = None
) -> list[DeadLetter]:
    """Every DLQ record from ``from_offset`` up to the end as of now (no consumer group, commits nothing)."""
    settings = settings or get_settings()
    topic = DEAD_LETTER.full_name(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        tps = [TopicPartition(topic, p) for p in range(DEAD_LETTER.partition_count(settings))]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        letters: list[DeadLetter] = []
        for tp in tps:
            consumer.seek(tp, from_offset)
        remaining = {tp for tp in tps if ends[tp] > from_offset}
        while remaining and (limit is None or len(letters) < limit):
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    letters.append(DeadLetter.from_record(r.offset, r.key, r.value, r.headers))
                    if r.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
            if not batch:
                # read_committed skips aborted records and transaction markers: the position may sit at the end
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        letters.sort(key=lambda x: x.dlq_offset)
        return letters[:limit] if limit is not None else letters
    finally:
        await consumer.stop()


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
