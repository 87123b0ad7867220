"""Shared benchmark plumbing: fresh topics, bulk input, timing, the result table."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BOOTSTRAP = os.environ.get("CROWNSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
RESULTS = Path(__file__).parent / "results"


@dataclass
class Row:
    name: str
    count: int
    seconds: float
    unit: str = "events/s"
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def run_id() -> str:
    return uuid.uuid4().hex[:8]


async def create_topic(name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def team_result(n: int, tournaments: int = 8, teams: int = 1000) -> dict:
    """One team's row of a battle-royale lobby, the unit the standings engine folds."""
    return {
        "tournament_id": f"t-{n % tournaments}",
        "team_id": f"team-{n % teams}",
        "match": n // teams,
        "placement": n % 16 + 1,
        "kills": n % 7,
    }


async def fill_topic(topic: str, count: int, make=team_result, key_field: str = "tournament_id") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, max_batch_size=512 * 1024, acks=1)
    await producer.start()
    try:
        futures = []
        for n in range(count):
            value = make(n)
            futures.append(await producer.send(topic, orjson.dumps(value), key=str(value[key_field]).encode()))
            if len(futures) >= 20_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def print_table(rows: list[Row], ceiling: Row | None) -> str:
    header = f"{'benchmark':<58} {'count':>9} {'seconds':>8} {'rate':>14} {'vs raw aiokafka':>16}  note"
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = f"{row.rate / ceiling.rate:>15.0%}" if ceiling and row.unit == "events/s" and ceiling.rate else " " * 15
        lines.append(
            f"{row.name:<58} {row.count:>9} {row.seconds:>8.2f} {row.rate:>9.0f} {row.unit:<4} {ratio}  {row.note}"
        )
    text = "\n".join(lines)
    print(text)
    return text


def save(rows: list[Row], text: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(json.dumps([{**asdict(r), "rate": r.rate} for r in rows], indent=2))
    (RESULTS / f"bench-{stamp}.txt").write_text(text + "\n")
    return path
