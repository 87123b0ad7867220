"""Reading a topic back as a consumer that commits nothing (read_committed: what downstream sees)."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(bootstrap: str, topic: str, *, settle: float = 1.5, timeout: float = 60) -> list[dict]:
    """Every committed record of ``topic`` up to its current end, as decoded JSON."""
    return [orjson.loads(r.value) for r in await read_records(bootstrap, topic, settle=settle, timeout=timeout)]


async def read_records(bootstrap: str, topic: str, *, settle: float = 1.5, timeout: float = 60) -> list:
    """Every committed record of ``topic`` up to its current end, as aiokafka ConsumerRecords (partition, offset,
    timestamp, raw value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        # consumer.topics() fetches metadata into a throwaway ClusterMetadata, not the client's own cache, so
        # the partitions must come from that same answer (the cache may not know the topic yet).
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=int(settle * 1000))
            for rs in batch.values():
                records += rs
            positions = {tp: await consumer.position(tp) for tp in tps}
            if not batch and all(positions[tp] >= ends[tp] for tp in tps):
                break
        return records
    finally:
        await consumer.stop()


async def read_topics_to_end(bootstrap: str, topics: list[str], *, timeout: float = 60) -> dict[str, list[dict]]:
    """Every committed record of each of ``topics`` up to its end as of the call, as decoded JSON, by topic.

    For polling loops: one consumer for all the topics, and done once it has reached their ends (read_records
    also waits for a quiet ``settle`` after the end, seconds per call that a poll repeats anyway)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()  # see read_records
        tps = [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]
        found: dict[str, list[dict]] = {t: [] for t in topics}
        if not tps:
            return found
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                break
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found[tp.topic] += [orjson.loads(r.value) for r in records]
        return found
    finally:
        await consumer.stop()
