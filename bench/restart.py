"""Restart to ready: how long a worker that owned a table of N keys takes, after a restart, until /readyz
answers 200, and its first start (no local state: every key from the changelog) — with the restore consumer
(crownstream/engine/recovery.py) against the baseline measured in the same run, Faust's own recovery.

The table is filled by writing its changelog directly (what N events would leave there, in transactions as
under exactly_once), so the row measures recovery, not event processing. The worker is a real ``crownstream worker``
process with the project's tables; it is stopped with SIGTERM between the two starts, as an orchestrator would on a
rolling restart, and restarted on the same port and data dir (the data dir is per app id and port).

Memory: the worker's resident set size once ready with the N keys (restore consumer), after the first start and
after the restart, each beside the same worker ready with the table empty (its own app id: an empty changelog).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import BOOTSTRAP, Row, rss_bytes
from crownstream.processes import free_port
from tests.support.services import REPO

TABLE = "tournament-activity"  # a table every worker has; one key per tournament
PARTITIONS = 8
RSS_SETTLE_S = 3.0  # after /readyz: the restore's buffers released, the first metrics refresh done
MB = 1024 * 1024


def changelog_topic(app_id: str) -> str:
    return f"{app_id}-{TABLE}-changelog"


async def fill_changelog(topic: str, keys: int, per_transaction: int = 50_000) -> None:
    """Written in transactions, as a worker under exactly_once writes its changelogs: every partition ends in a
    commit marker, which a restore reads past but never receives."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, linger_ms=20, max_batch_size=512 * 1024, transactional_id=f"{topic}-fill"
    )
    await producer.start()
    try:
        value = orjson.dumps({"counts": {"match.completed": 6}, "last_occurred_at": "2026-11-24T18:00:00+00:00"})
        for first in range(0, keys, per_transaction):
            async with producer.transaction():
                for n in range(first, min(keys, first + per_transaction)):
                    # Faust's json key serializer: the key is the JSON of the string, hashed like the producer's key.
                    await producer.send(topic, value, key=orjson.dumps(f"t-{n}"))
    finally:
        await producer.stop()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    exe = REPO / ".venv" / "bin" / "crownstream"
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(exe if exe.exists() else "crownstream"), "worker", "--loglevel", "warn"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            start_new_session=True,
        )


async def time_to_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}: {log.read_text()[-3000:]}")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"worker not ready after {timeout}s; log {log}")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def settled_rss(proc: subprocess.Popen) -> int:
    await asyncio.sleep(RSS_SETTLE_S)
    return rss_bytes(proc.pid)


@dataclass
class Readiness:
    cold: float  # seconds, first start to ready
    warm: float  # seconds, restart to ready
    cold_rss: int  # bytes, once ready after the first start
    warm_rss: int  # bytes, once ready after the restart


async def measure(run_id: str, keys: int, restore: str, timeout: float) -> Readiness:
    """First start (no local state: everything from the changelog) and restart (local state) to ready, with
    active tables restored by ``restore`` (CROWNSTREAM_TABLE_RESTORE), and the worker's RSS once ready after each.
    With ``keys`` 0 the table stays empty (the changelog is not written): the RSS baseline."""
    app_id = f"bench-{run_id}-restart-{restore}" + ("-empty" if not keys else "")
    if keys:
        print(f"  [{restore}] writing {keys:,} keys to {changelog_topic(app_id)} …", flush=True)
        await fill_changelog(changelog_topic(app_id), keys)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "CROWNSTREAM_DEV_MODE": "true",
            "CROWNSTREAM_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "CROWNSTREAM_APP_ID": app_id,
            "CROWNSTREAM_TOPIC_PREFIX": f"{app_id}.",
            "CROWNSTREAM_TOPIC_PARTITIONS": str(PARTITIONS),
            "CROWNSTREAM_WEB_PORT": str(port),
            "CROWNSTREAM_DATA_DIR": tmp,
            "CROWNSTREAM_LOG_JSON": "false",
            "CROWNSTREAM_TABLE_STANDBY_REPLICAS": "0",
            "CROWNSTREAM_TABLE_RESTORE": restore,
            "PYTHONUNBUFFERED": "1",
        }
        from crownstream.settings import Settings
        from crownstream.streams.admin import ensure_topics

        await ensure_topics(
            settings=Settings(
                **{k.removeprefix("CROWNSTREAM_").lower(): v for k, v in env.items() if k.startswith("CROWNSTREAM_")}
            )
        )
        url = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "worker.log"
        proc = start_worker(env, log)
        try:
            cold = await time_to_ready(proc, url, log, timeout)
            cold_rss = await settled_rss(proc)
            print(
                f"  [{restore}] first start (the whole changelog): {cold:.2f}s; RSS {cold_rss / MB:.0f} MB", flush=True
            )
            stop(proc)
            proc = start_worker(env, log)
            warm = await time_to_ready(proc, url, log, timeout)
            rss = await settled_rss(proc)
            print(f"  [{restore}] restart (local RocksDB state): {warm:.2f}s; RSS {rss / MB:.0f} MB", flush=True)
        finally:
            stop(proc)
    return Readiness(cold, warm, cold_rss, rss)


async def run(run_id: str, keys: int, timeout: float = 900) -> list[Row]:
    faust = await measure(run_id, keys, "faust", timeout)
    ours = await measure(run_id, keys, "consumer", timeout)
    empty = await measure(run_id, 0, "consumer", timeout)
    faust_cold, faust_warm, cold, warm = faust.cold, faust.warm, ours.cold, ours.warm
    return [
        Row(
            f"first start to ready, {keys:,} table keys: Faust's recovery",
            keys,
            faust_cold,
            unit="keys/s",
            note="baseline",
        ),
        Row(
            f"first start to ready, {keys:,} table keys: restore consumer",
            keys,
            cold,
            unit="keys/s",
            note=f"{cold:.2f} s; {faust_cold / cold:.1f}x faster than Faust's recovery",
        ),
        Row(
            f"restart to ready, {keys:,} table keys: Faust's recovery", keys, faust_warm, unit="keys/s", note="baseline"
        ),
        Row(
            f"restart to ready, {keys:,} table keys: restore consumer",
            keys,
            warm,
            unit="keys/s",
            note=f"{warm:.2f} s; goal <= 10 s at 1M keys; {faust_warm / warm:.1f}x faster than Faust's recovery",
        ),
        *rss_rows("first start", keys, ours.cold_rss, empty.cold_rss),
        *rss_rows("restart", keys, ours.warm_rss, empty.warm_rss),
    ]


def rss_rows(phase: str, keys: int, rss: int, empty_rss: int) -> list[Row]:
    """RSS in MB as the rows' count (over 1 s, so the rate column reads MB too), the empty table first."""
    return [
        Row(f"worker RSS once ready ({phase}), table empty", round(empty_rss / MB), 1.0, unit="MB", note="baseline"),
        Row(
            f"worker RSS once ready ({phase}), {keys:,} table keys",
            round(rss / MB),
            1.0,
            unit="MB",
            note=f"{rss / empty_rss:.2f}x the empty table's {empty_rss / MB:.0f} MB; "
            f"{(rss - empty_rss) / max(keys, 1):.0f} bytes a key more",
            extra={"rss_bytes": rss, "empty_rss_bytes": empty_rss},
        ),
    ]
