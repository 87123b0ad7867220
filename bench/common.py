"""Shared benchmark plumbing: fresh topics, bulk input, timing, the result table."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BOOTSTRAP = os.environ.get("CROWNSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
# The local PostgreSQL of deploy/ (user@host:port), named by the variables tests/support/services.py reads.
POSTGRES = (
    f"{os.environ.get('CROWNSTREAM_PG_USER', 'crownstream')}@127.0.0.1:{os.environ.get('CROWNSTREAM_PG_PORT', '15432')}"
)
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


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile by rank (no interpolation): with an ``inf`` for every sample never seen, a p99 that
    includes one is reported as infinite rather than averaged away."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid``: psutil where installed, else the kernel's VmRSS (Linux)."""
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # reported in kB
        raise RuntimeError(f"/proc/{pid}/status has no VmRSS line: no RSS for this process on this system") from None
    return psutil.Process(pid).memory_info().rss


@asynccontextmanager
async def fresh_database(prefix: str = "bench") -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the local server for one row, dropped afterwards; yields its
    SQLAlchemy URL (asyncpg driver)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"postgresql://{POSTGRES}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://{POSTGRES}/{name}"
    finally:
        admin = await asyncpg.connect(f"postgresql://{POSTGRES}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


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
