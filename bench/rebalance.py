"""Rebalance pause: how long each rebalance stops processing on the workers of a group, events flowing.

Real ``crownstream worker`` processes with one standby replica per table, on 8 partitions, while battle-royale
lobbies arrive at a steady rate over 8 tournaments: two workers, then a third joins, one of the first two leaves
with SIGTERM, and a fourth joins — three rebalances, each pausing every member (Faust's protocol is eager). Each
worker logs every pause it ends (``crownstream/engine/rebalance_pause.py``: from its partitions' revocation to the
first event it processes in the new generation); the row gives p50 and max over all of them.

Run twice in one bench: with the default fetch long poll (``CROWNSTREAM_CONSUMER_FETCH_MAX_WAIT_MS``, 200 ms) and with
Faust's 1.5 s, the baseline: the offset look-ups of a rebalance queue behind an idle fetch on the worker consumer's
connection.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import BOOTSTRAP, Row, fresh_database, percentile
from bench.latency import produce_load
from crownstream.processes import free_port
from crownstream.settings import Settings
from crownstream.sinks import db
from crownstream.streams.admin import ensure_topics
from tests.support.workers import Worker

PAUSE_LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\].*processing resumed ([0-9.]+) s after the rebalance's revocation",
    re.MULTILINE,
)
GOAL_S = 1.0
#: Where to keep the workers' logs (a folder per run), for the parts of each pause: join, store opens, recovery.
KEEP_LOGS = os.environ.get("CROWNSTREAM_BENCH_KEEP_LOGS")
STEP_S = 15.0  # between two changes of membership: each rebalance settles before the next
LOBBY_SIZE, LOBBIES_PER_S = 20, 20  # 400 team results/s


def pauses_in(log: Path, since: float) -> list[float]:
    """The pauses a worker logged whose revocation came at ``since`` (epoch seconds) or later: one that began before
    the load did (the group forming as the first two workers start) ends with the load's first event, not when the
    worker could process again."""
    if not log.exists():
        return []
    pauses = []
    for stamp, millis, pause in PAUSE_LINE.findall(log.read_text(errors="replace")):
        ended = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
        if ended - float(pause) >= since:
            pauses.append(float(pause))
    return pauses


async def measure(run_id: str, label: str, **overrides: object) -> tuple[list[float], int]:
    """The pauses of three rebalances (2 -> 3 workers, one leaves, 2 -> 3), and the lobbies produced meanwhile."""
    names = [f"reb-{i}" for i in range(8)]
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database("bench_reb") as database_url:
            await asyncio.to_thread(db.upgrade, database_url)
            base = Settings(
                app_id=f"bench-{run_id}-{label}",
                topic_prefix=f"bench-{run_id}-{label}.",
                topic_partitions=8,
                table_standby_replicas=1,
                log_json=False,
                kafka_bootstrap=BOOTSTRAP,
                database_url=database_url,
                dev_mode=True,
                staff_token="bench-rebalance-staff-token-32-chars",
                **overrides,  # type: ignore[arg-type]
            )
            await ensure_topics(settings=base)
            workers: list[Worker] = []

            def start(n: int) -> Worker:
                settings = base.model_copy(update={"web_port": free_port(), "data_dir": f"{tmp}/w{n}"})
                worker = Worker(settings, Path(tmp) / f"worker-{n}.log").start()
                workers.append(worker)
                return worker

            try:
                for n in range(2):
                    start(n)
                for worker in workers:
                    await asyncio.to_thread(worker.wait_ready, 120)
                load_started = time.time()
                load = asyncio.create_task(
                    produce_load(base, names, LOBBIES_PER_S, 4 * STEP_S, LOBBY_SIZE)  # stage configs first
                )
                await asyncio.sleep(STEP_S)
                await asyncio.to_thread(start(2).wait_ready, 120)
                await asyncio.sleep(STEP_S)
                await asyncio.to_thread(workers[0].stop, 60)
                await asyncio.sleep(STEP_S)
                await asyncio.to_thread(start(3).wait_ready, 120)
                sent_at, _ = await load
                await asyncio.sleep(5)  # a worker ends its pause with its first event of the new generation
                return [p for w in workers for p in pauses_in(w.log_path, load_started)], len(sent_at)
            finally:
                for worker in workers:
                    await asyncio.to_thread(worker.stop, 60)
                if KEEP_LOGS:  # each pause's parts are read from the workers' logs
                    kept = Path(KEEP_LOGS) / label
                    kept.mkdir(parents=True, exist_ok=True)
                    for worker in workers:
                        if worker.log_path.exists():
                            shutil.copy(worker.log_path, kept)


async def section(run_id: str) -> list[Row]:
    rows: list[Row] = []
    for label, overrides, what in (
        ("default", {}, "default 200-ms fetch long poll"),
        ("poll1500", {"consumer_fetch_max_wait_ms": 1500}, "Faust's 1.5-s fetch long poll (baseline)"),
    ):
        started = time.perf_counter()
        pauses, lobbies = await measure(run_id, label, **overrides)
        p50, worst = (percentile(pauses, 0.5), max(pauses)) if pauses else (float("nan"), float("nan"))
        note = f"p50 {p50:.2f} s, max {worst:.2f} s over {len(pauses)} pauses"
        note += f" (goal max <= {GOAL_S:.0f} s: {'met' if worst <= GOAL_S else 'missed'})"
        rows.append(
            Row(
                f"rebalance pause, standbys, {LOBBIES_PER_S * LOBBY_SIZE} results/s: {what}",
                lobbies,
                time.perf_counter() - started,
                unit="lobbies/s",
                note=note,
                extra={"pauses_s": pauses, "p50_s": p50, "max_s": worst},
            )
        )
        print(f"  {rows[-1].name}: {note}", flush=True)
    return rows
