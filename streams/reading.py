"""Reading topics back as an operator command does: no consumer group, nothing committed, committed records only
(``read_committed``), from a point in time (or the beginning) up to each partition's end as of the start."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from crownstream.settings import Settings, get_settings
from crownstream.streams.topics import TopicSpec


async def read_topics(
    topics: Iterable[TopicSpec],
    since_ms: int | None = None,
    settings: Settings | None = None,
    from_offset: int | None = None,
) -> AsyncGenerator[Any, None]:
    """Every committed record of ``topics`` (those that exist) written at or after ``since_ms`` (Unix ms; None:
    from the beginning) and at or after ``from_offset`` in its partition, partition by partition in offset order.
    Yields aiokafka ``ConsumerRecord``s; stop early with ``contextlib.aclosing``."""
    settings = settings or get_settings()
    partitions = await _partitions(dict.fromkeys(spec.full_name(settings) for spec in topics), settings)
    tps = [TopicPartition(name, p) for name, count in partitions.items() for p in range(count)]
    if not tps:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = (
            {
                tp: found.offset if found is not None else ends[tp]
                for tp, found in (await consumer.offsets_for_times({tp: since_ms for tp in tps})).items()
            }
            if since_ms is not None
            else await consumer.beginning_offsets(tps)
        )
        if from_offset is not None:
            starts = {tp: max(start, from_offset) for tp, start in starts.items()}
        for tp in tps:
            if starts[tp] >= ends[tp]:
                continue
            consumer.seek(tp, starts[tp])
            while await consumer.position(tp) < ends[tp]:
                # read_committed skips aborted records and transaction markers: the position moves past them
                # even when a fetch returns nothing.
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, ()):
                    if record.offset >= ends[tp]:
                        break
                    yield record
    finally:
        await consumer.stop()


async def _partitions(names: Iterable[str], settings: Settings) -> dict[str, int]:
    """How many partitions each of ``names`` that exists has, as the broker says (not the count configured here,
    which may differ). Listed before described: describing a missing topic could create it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = await admin.list_topics()
        wanted = [name for name in names if name in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
    return {name: counts[name] for name in wanted if name in counts}
