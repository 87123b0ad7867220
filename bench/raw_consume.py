"""The ceiling: a plain aiokafka consumer reading and JSON-decoding every record, doing nothing else."""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaConsumer

from bench.common import BOOTSTRAP, Row


async def run(topic: str, count: int) -> Row:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"raw-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batch:
                started = time.perf_counter()
            for records in batch.values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return Row("raw aiokafka consume + orjson decode (ceiling)", seen, time.perf_counter() - started)
    finally:
        await consumer.stop()
