"""Two workers in one consumer group, a tournament streamed in, one worker killed with SIGKILL mid-stream:
the survivor takes over, final standings equal a recompute from the events, and every output
(ranking.changed, standings.finalized, payout.distributed) is committed exactly once — the same set a clean,
uninterrupted run commits."""

from __future__ import annotations

import asyncio
import collections
import time

import httpx
import pytest

from crownstream.demo.tournament import demo_tournament
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import STANDINGS_EVENTS
from tests.support.kafka_read import read_topic
from tests.support.operations import expected_standings
from tests.support.workers import wait_all_ready

pytestmark = pytest.mark.slow

TOURNAMENTS = [f"cup-{n}" for n in range(6)]


def tournament_events() -> list[dict]:
    events = []
    for n, t in enumerate(TOURNAMENTS):
        events += [
            e
            for e in demo_tournament(t, seed=n, br_matches=8)
            if e["stage_id" if "stage_id" in e else "type"] != "group-a"
        ]
    return events


def standings_of(url: str, tournament_id: str, answers: dict | None = None) -> list[tuple[str, int]] | None:
    """The (team, points) rows a worker answers, or None; ``answers[url]`` keeps its raw answer for a failure."""
    r = httpx.get(
        f"{url}/tournaments/{tournament_id}/standings", params={"stage": "br-finals", "limit": 1000}, timeout=10
    )
    if answers is not None:
        answers[url] = (r.status_code, r.text[:300])
    if r.status_code != 200:
        return None
    return [(row["team_id"], row["total_points"]) for row in r.json()["standings"]]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def produce(settings, events, pace: float = 0.0):
    async with EventProducer(settings) as producer:
        for i, event in enumerate(events):
            await producer.send(event)
            if pace and i % 10 == 9:
                await producer.flush()
                await asyncio.sleep(pace)


async def committed_outputs(settings) -> list[dict]:
    return await read_topic(settings.kafka_bootstrap, STANDINGS_EVENTS.full_name(settings))


async def committed_outputs_with_finals(settings, finals: int, timeout: float = 60.0) -> list[dict]:
    """The committed outputs once ``finals`` ``standings.finalized`` records are among them (or at ``timeout``).

    The standings served include writes whose transaction has not committed yet (read-your-writes, as in Kafka
    Streams' interactive queries); the outputs count once their transactions have committed, up to a commit
    interval later."""
    deadline = time.monotonic() + timeout
    while True:
        outputs = await committed_outputs(settings)
        if sum(e["type"] == "standings.finalized" for e in outputs) >= finals or time.monotonic() > deadline:
            return outputs
        await asyncio.sleep(1)


async def test_kill_minus_nine_mid_stream_loses_and_duplicates_nothing(settings, topics, start_worker, tmp_path):
    events = [e for e in tournament_events() if e.get("stage_id") != "group-a"]
    # The clean run's worker (another group, on topics of its own: it sees nothing of the crash run) starts with
    # the others; it gets its events once the crash run is checked.
    clean = settings.model_copy(
        update={"app_id": settings.app_id + "-clean", "topic_prefix": settings.topic_prefix + "clean."}
    )
    from crownstream.streams.admin import ensure_topics

    await ensure_topics(settings=clean)
    clean_worker = start_worker(wait=False, app_id=clean.app_id, topic_prefix=clean.topic_prefix)
    first, second = wait_all_ready([start_worker(wait=False), start_worker(wait=False)])

    half = len(events) // 2
    await produce(settings, events[:half], pace=0.05)
    # Both workers answer every query identically (one serves, the other forwards to the owner).
    # Waiting for the exact standings of what was sent, not just any answer: the two queries must not race the
    # stream.
    for t in TOURNAMENTS[:3]:
        so_far = expected_standings(events[:half], t)
        wait_until(lambda: standings_of(first.url, t) == so_far, 60, f"standings of {t}")
        assert standings_of(second.url, t) == so_far

    second.kill()  # SIGKILL mid-stream: no commit, no goodbye to the group
    await produce(settings, events[half:], pace=0.05)

    for t in TOURNAMENTS:
        expected = expected_standings(events, t)
        try:
            wait_until(lambda: standings_of(first.url, t) == expected, 60, f"final standings of {t} on the survivor")
        except AssertionError as exc:
            r = httpx.get(f"{first.url}/tournaments/{t}/standings", params={"stage": "br-finals"}, timeout=10)
            ops = httpx.get(f"{first.url}/ops/assignment", headers=first.staff_headers, timeout=10).json()
            raise AssertionError(
                f"{t}: survivor answers {r.status_code} {r.text[:300]}\nexpected {expected[:5]}\n"
                f"survivor: {ops['sources']}\n"
                + "\n".join(
                    line
                    for line in httpx.get(f"{first.url}/metrics").text.splitlines()
                    if line.startswith("crownstream_events_in_total")
                )
            ) from exc

    crash_outputs = await committed_outputs_with_finals(settings, len(TOURNAMENTS))
    ids = collections.Counter(e["event_id"] for e in crash_outputs)
    duplicates = {i: n for i, n in ids.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} outputs committed more than once: {list(duplicates)[:5]}"
    finals = [e for e in crash_outputs if e["type"] == "standings.finalized"]
    payouts = [e for e in crash_outputs if e["type"] == "payout.distributed"]
    assert len(finals) == len(TOURNAMENTS) and len(payouts) == 3 * len(TOURNAMENTS)
    for final in finals:
        expected = expected_standings(events, final["tournament_id"])
        assert [(p["team_id"], p["points"]) for p in final["placements"]] == expected

    # The same events through one uninterrupted worker of another group commit exactly the same outputs.
    clean_worker.wait_ready()
    await produce(clean, events)
    wait_until(
        lambda: standings_of(clean_worker.url, TOURNAMENTS[-1]) == expected_standings(events, TOURNAMENTS[-1]),
        120,
        "clean run",
    )
    deadline = time.monotonic() + 60
    clean_outputs: list[dict] = []
    while time.monotonic() < deadline:
        clean_outputs = await committed_outputs(clean)
        if len(clean_outputs) >= len(crash_outputs):
            break
        await asyncio.sleep(1)
    assert collections.Counter(e["event_id"] for e in clean_outputs) == ids
    print(
        f"\noutputs committed: {len(crash_outputs)} "
        f"({collections.Counter(e['type'] for e in crash_outputs)}), duplicates: 0, missing vs clean run: 0"
    )
