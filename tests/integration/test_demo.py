"""``python -m crownstream.demo`` end to end against the real broker and PostgreSQL (small and quick: three
battle-royale matches, no pacing): it must finish, verify its standings against a recompute, deliver every
notification to its loopback receivers exactly once — the summary's per-channel figures are checked here against
the committed delivery requests and the demo's ledger, read independently — stop both worker processes, and on
Ctrl-C stop them too."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.engine import make_url

from crownstream.settings import Settings
from crownstream.streams.topics import DELIVERIES
from tests.support.services import REPO

pytestmark = pytest.mark.slow


def demo_env(kafka_bootstrap: str, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWNSTREAM_")}
    return {
        **env,
        "CROWNSTREAM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CROWNSTREAM_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
    }


def worker_pids(output: str) -> list[int]:
    return [int(p) for p in re.findall(r"\(pid (\d+)\)", output)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes only once reaped; the demo waits for its children, so expect none.
    return False


def run_demo(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run the demo; if it overruns, stop it as a user would (Ctrl-C) so that it stops its workers too."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "crownstream.demo", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = demo.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=90)
        raise AssertionError(f"the demo did not finish in {timeout}s:\n{out[-4000:]}\n{err[-2000:]}") from None
    return demo.returncode, out, err


CHANNEL_LINE = re.compile(
    r"^\s+(\w+)\s+requested\s+(\d+)\s+received\s+(\d+)\s+missing (\d+)\s+duplicates (\d+)"
    r"\s+unexpected (\d+)\s+(match|MISMATCH)$",
    re.M,
)


async def committed_dedup_keys(settings: Settings) -> dict[str, set[str]]:
    """The demo's committed delivery requests, per channel, read here from its topics."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        keys: dict[str, set[str]] = {}
        for channel, spec in DELIVERIES.items():
            tps = [TopicPartition(spec.full_name(settings), p) for p in range(spec.partition_count(settings))]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            keys[channel] = set()
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, ()):
                        keys[channel].add(orjson.loads(record.value)["dedup_key"])
        return keys
    finally:
        await consumer.stop()


def asyncpg_dsn(sqlalchemy_url: str, database: str | None = None) -> str:
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return (url.set(database=database) if database else url).render_as_string(hide_password=False)


@pytest.fixture
def state_dir(worker_state_root, unique_id):
    """The demo's --state-dir: its workers' tables in memory like the other tests' workers (tests/conftest.py)."""
    folder = worker_state_root / f"demo-{unique_id}"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(600)
async def test_demo_runs_to_completion_and_leaves_nothing_running(kafka_bootstrap, database_url, state_dir):
    code, out, err = run_demo(
        [
            "--pace",
            "0",
            "--br-matches",
            "3",
            "--partitions",
            "2",
            "--no-keep-serving",
            "--no-progress",
            "--keep-database",
            "--state-dir",
            str(state_dir),
        ],
        demo_env(kafka_bootstrap, database_url),
        timeout=420,
    )
    kept = re.search(r"kept database '(\w+)': (\S+)", out)
    try:
        assert code == 0, f"demo exited {code}\n{out[-4000:]}\n{err[-3000:]}"
        assert kept, out[-3000:]
        await check_deliveries(out, kafka_bootstrap, kept.group(2))
    finally:
        if kept:
            admin = await asyncpg.connect(asyncpg_dsn(database_url, "postgres"))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{kept.group(1)}" WITH (FORCE)')
            finally:
                await admin.close()
    assert "Standings equal a recompute from the events: yes" in out
    assert "PROBLEM" not in out
    # Three matches, one corrected, one retried duplicate, and a staff override were each shown live.
    assert out.count("▶ br-m") == 5 and "corrected by the referee" in out and "must change nothing" in out
    final = re.search(r"final standings \((\d+) teams\)", out)
    assert final and int(final.group(1)) == 16
    assert "1 standings.finalized" in out and "3 payout.distributed" in out
    assert "Dead-lettered records: 0" in out
    assert re.search(
        r"Live leaderboard: http://127\.0\.0\.1:\d+/tournaments/demo-cup/leaderboard\?stage=br-finals", out
    )
    assert re.search(r"Group A.*\n\s+1\. \w+", out)
    assert "nothing left running" in out
    pids = worker_pids(out)
    assert len(pids) == 2 and all(gone(p) for p in pids)


async def check_deliveries(out: str, kafka_bootstrap: str, demo_database_url: str) -> None:
    """The summary's per-channel figures against the delivery topics and the demo's ledger and feed."""
    figures = {m[0]: (*map(int, m[1:6]), m[6]) for m in CHANNEL_LINE.findall(out)}
    assert set(figures) == {"email", "discord", "webhook", "in_app"}, out[-3000:]
    prefix = re.search(r"topics (\S+)\*", out).group(1)
    committed = await committed_dedup_keys(
        Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, topic_partitions=2)
    )
    db = await asyncpg.connect(asyncpg_dsn(demo_database_url))
    try:
        ledger = {
            (r["channel"], r["state"]): r["n"]
            for r in await db.fetch(
                "SELECT channel, state, count(DISTINCT dedup_key) AS n FROM deliveries GROUP BY channel, state"
            )
        }
        feed = await db.fetchval("SELECT count(*) FROM feed_items")
    finally:
        await db.close()
    for channel, (requested, received, missing, duplicates, unexpected, verdict) in figures.items():
        assert requested == len(committed[channel]) > 0, (channel, requested, len(committed[channel]))
        assert (received, missing, duplicates, unexpected, verdict) == (requested, 0, 0, 0, "match"), channel
        # The ledger recorded every one of them as sent: what the receivers acknowledged.
        assert ledger.get((channel, "sent")) == received, (channel, ledger)
    assert {state for _, state in ledger} == {"sent"}, ledger
    assert feed == figures["in_app"][1]
    assert f"In-app feed items: {feed}" in out
    assert re.search(r"Sample email subject: \S", out) and re.search(r"Sample Discord title: \S", out)
    assert re.search(r"Sample webhook id: [0-9a-f]{64}", out)
    assert "user-04-1 gets match results in a daily digest at 08:00 Europe/Berlin: 0 match-result emails" in out
    assert "Deliveries match the requests: yes" in out
    # The trace of one result, for a player on every channel and one whose result emails go to a digest.
    assert re.search(r"\$ crownstream trace demo-cup:br-m\d:\S+ --user user-02-1\ntrace [0-9a-f]{32} of event", out)
    assert re.search(r"crownstream\.deliveries\.webhook\[\d+\]@\d+ .* webhook \S+ to user-02-1", out)
    assert "email to user-04-1: held, digest: held for the user's digest" in out
    assert re.search(r"\(the whole trace: \d+ records, \d+ delivery requests \(\d+ sent\)", out)


@pytest.mark.timeout(600)
async def test_ctrl_c_stops_the_workers(kafka_bootstrap, database_url, tmp_path, state_dir):
    log = tmp_path / "demo.out"
    with open(log, "w") as sink:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crownstream.demo",
                "--pace",
                "1",
                "--partitions",
                "2",
                "--no-progress",
                "--state-dir",
                str(state_dir),
            ],
            env=demo_env(kafka_bootstrap, database_url),
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # As a background job of a shell without job control starts it: SIGINT ignored. The demo must
            # still stop on it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        deadline = time.monotonic() + 240
        while "streaming" not in log.read_text():
            assert demo.poll() is None, f"demo exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"demo never started streaming:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        demo.send_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
        code = demo.wait(90)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            demo.wait(90)
    out = log.read_text()
    assert code == 130, out[-3000:]
    assert "interrupted" in out and "nothing left running" in out
    pids = worker_pids(out)
    assert len(pids) == 2 and all(gone(p) for p in pids)
