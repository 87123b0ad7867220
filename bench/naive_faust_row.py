from __future__ import annotations

from bench.common import Row
from bench.faust_runner import run_worker_until_done
from crownstream.processes import free_port


async def run(topic: str, count: int) -> Row:
    return await run_worker_until_done(
        "bench.naive_faust",
        topic,
        count,
        "naive Faust agent: 1 table update per event (floor)",
        {"BENCH_WEB_PORT": str(free_port())},
    )
