"""Events validated (pydantic, at the edge) and produced per second through ``EventProducer``."""

from __future__ import annotations

import time

from bench.common import BOOTSTRAP, Row
from crownstream.schemas.examples import example
from crownstream.settings import Settings
from crownstream.streams.admin import ensure_topics
from crownstream.streams.producer import EventProducer


async def run(prefix: str, count: int) -> Row:
    settings = Settings(kafka_bootstrap=BOOTSTRAP, topic_prefix=prefix, topic_partitions=8)
    await ensure_topics(settings=settings)
    events = [
        example(
            "match.completed",
            event_id=f"bench-{n}",
            tournament_id=f"t-{n % 32}",
            match_id=f"m-{n}",
            result={
                "format": "battle_royale",
                "sequence": 1 + n % 20,
                "placements": [
                    {"team_id": f"team-{(n + i) % 1000}", "placement": i + 1, "kills": i % 5} for i in range(16)
                ],
            },
        )
        for n in range(count)
    ]
    async with EventProducer(settings, linger_ms=10) as producer:
        started = time.perf_counter()
        for event in events:
            await producer.send(event)  # dicts: validated here, as a backend's call would be
        await producer.flush()
        elapsed = time.perf_counter() - started
    return Row(
        "producer API: validate + produce match.completed (16-team lobby)", count, elapsed, note="idempotent, acks=all"
    )
