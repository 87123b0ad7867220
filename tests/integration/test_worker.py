"""A worker started by the ``crownstream`` entry point consumes from the real broker."""

from __future__ import annotations

import time

import httpx

from crownstream.schemas.examples import example
from crownstream.streams.producer import EventProducer


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def test_worker_started_by_entry_point_consumes_events(settings, topics, start_worker):
    worker = start_worker()
    async with EventProducer(settings) as producer:
        for n in range(5):
            await producer.send(example("match.started", event_id=f"start-{n}", tournament_id="t-a", match_id=f"m-{n}"))
        await producer.send(example("bracket.ready", event_id="br-1", tournament_id="t-a"))

    def activity():
        r = httpx.get(f"{worker.url}/tournaments/t-a/activity", timeout=5)
        return r.json() if r.status_code == 200 and sum(r.json()["counts"].values()) == 6 else None

    body = wait_for(activity)
    assert body["counts"] == {"match.started": 5, "bracket.ready": 1}
    assert worker.alive()
