"""The operator's path after a fix: records rejected by a worker are listed with their reason, the worker is
fixed (here: its size limit raised), ``crownstream dlq replay`` puts them back on their source topic, and
they are processed — nothing was lost in between."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import orjson

from crownstream.processes import settings_env
from crownstream.schemas.examples import example
from crownstream.streams.dlq_ops import read_dead_letters
from crownstream.streams.producer import EventProducer
from tests.integration.test_worker import wait_for
from tests.support.workers import CROWNSTREAM


def big_lobby(n: int) -> dict:
    # A 40-team lobby with long ids is a few KiB: over the 1 KiB limit the first worker runs with.
    placements = [
        {"team_id": f"team-with-a-long-platform-id-{i:03d}", "placement": i + 1, "kills": i % 6} for i in range(40)
    ]
    return example(
        "match.completed",
        event_id=f"big-{n}",
        tournament_id="t-replay",
        match_id=f"m-{n}",
        result={"format": "battle_royale", "sequence": n + 1, "placements": placements},
    )


def cli(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CROWNSTREAM, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**settings_env(settings), "PATH": "/usr/bin:/bin"},
    )


async def test_rejected_records_are_replayed_after_the_fix(settings, topics, start_worker):
    strict = start_worker(max_event_bytes=1024)
    async with EventProducer(settings) as producer:
        for n in range(3):
            await producer.send(big_lobby(n))
        await producer.send(example("match.started", event_id="small-1", tournament_id="t-replay", match_id="m-x"))

    def activity(worker):
        r = httpx.get(f"{worker.url}/tournaments/t-replay/activity", timeout=5)
        return r.json()["counts"] if r.status_code == 200 else None

    assert wait_for(lambda: activity(strict), timeout=60) == {"match.started": 1}

    async def oversize_letters():
        return [letter for letter in await read_dead_letters(settings=settings) if letter.code == "oversize"]

    letters: list = []
    for _ in range(90):
        letters = await oversize_letters()
        if len(letters) == 3:
            break
        await asyncio.sleep(0.5)
    assert len(letters) == 3, letters
    assert all("limit is 1024" in letter.reason for letter in letters)

    listed = cli(settings, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [orjson.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["code"] for r in rows) == ["oversize"] * 3

    # The fix: a worker with the default limit replaces the strict one.
    strict.stop()
    fixed = start_worker()
    replay = cli(settings, "dlq", "replay", "--code", "oversize")
    assert replay.returncode == 0, replay.stderr
    assert "replayed 3 records" in replay.stdout

    counts = wait_for(lambda: (c := activity(fixed)) and c.get("match.completed") == 3 and c, timeout=90)
    assert counts == {"match.started": 1, "match.completed": 3}
