"""The live leaderboard page and its server-sent events, served by real workers from the real broker.

Two workers share the tournament's partitions: one owns the tournament and streams from its tables, the
other relays the owner's stream. Both must render the page and deliver every change, equal to the JSON
standings view."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import orjson
import pytest

from crownstream.demo.tournament import demo_tournament
from crownstream.streams.producer import EventProducer
from tests.support.sse import events, next_event
from tests.support.workers import wait_all_ready

pytestmark = pytest.mark.slow

T = "lb-cup"


def br_events(matches: int) -> tuple[list[dict], list[dict]]:
    """The BR stage's setup plus its first match, and the events of the second match."""
    stream = [
        e
        for e in demo_tournament(T, seed=7, br_matches=matches)
        if e.get("stage_id") in ("br-finals", None) and e["type"] != "tournament.completed"
    ]
    second = next(
        (i for i, e in enumerate(stream) if e["type"] == "match.started" and e["match_id"] == "br-m2"), len(stream)
    )
    return stream[:second], stream[second:]


async def produce(settings, batch: list[dict]) -> None:
    async with EventProducer(settings) as producer:
        for event in batch:
            await producer.send(event)


def json_standings(url: str) -> list[tuple[str, int, int]] | None:
    r = httpx.get(f"{url}/tournaments/{T}/standings", params={"stage": "br-finals"}, timeout=10)
    if r.status_code != 200:
        return None
    return [(row["team_id"], row["rank"], row["total_points"]) for row in r.json()["standings"]]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def rows(snapshot: dict) -> list[tuple[str, int, int]]:
    return [(row["team_id"], row["rank"], row["total_points"]) for row in snapshot["standings"]]


async def drain(stream) -> None:
    """Read a stream of server-sent events to its end."""
    async for _ in stream:
        pass


def owner_and_viewer(settings, workers):
    """The worker that owns the tournament's partition, and the other one (which relays its streams)."""
    from crownstream.streams.partitioning import partition_for
    from crownstream.streams.topics import TOURNAMENT_EVENTS

    home = f"{TOURNAMENT_EVENTS.full_name(settings)}[{partition_for(T, settings.topic_partitions)}]"
    owner = next(
        w
        for w in workers
        if home in httpx.get(f"{w.url}/ops/assignment", headers=w.staff_headers, timeout=5).json()["actives"]
    )
    return owner, next(w for w in workers if w is not owner)


async def test_page_and_live_stream_from_owner_and_non_owner(settings, topics, start_worker):
    first, second = wait_all_ready([start_worker(wait=False), start_worker(wait=False)])
    setup, later = br_events(2)
    await produce(settings, setup)
    after_one = wait_until(lambda: (s := json_standings(first.url)) and s[0][2] > 0 and s, 60, "match 1 standings")
    assert json_standings(second.url) == after_one

    for worker in (first, second):
        page = httpx.get(f"{worker.url}/tournaments/{T}/leaderboard", params={"stage": "br-finals"}, timeout=10)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert 'name="viewport"' in page.text and "<script src=" not in page.text  # phone-ready, nothing external
        teams_in_page_order = re.findall(r'<tr data-team="([^"]+)" data-rank="(\d+)"', page.text)
        assert [(t, int(r)) for t, r in teams_in_page_order] == [(t, r) for t, r, _ in after_one]

    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client,
        client.stream("GET", f"{first.url}/tournaments/{T}/leaderboard/events", params={"stage": "br-finals"}) as r1,
        client.stream("GET", f"{second.url}/tournaments/{T}/leaderboard/events", params={"stage": "br-finals"}) as r2,
    ):
        assert r1.status_code == r2.status_code == 200
        assert r1.headers["content-type"].startswith("text/event-stream")
        streams = [events(r1), events(r2)]
        for stream in streams:
            assert rows(orjson.loads((await next_event(stream, "standings", 30)).data)) == after_one

        await produce(settings, later)
        after_two = wait_until(
            lambda: (s := json_standings(first.url)) and s != after_one and s, 60, "match 2 standings"
        )
        for stream in streams:
            # Changes may arrive as several updates (result, then nothing else here): read to the last one.
            snapshot = orjson.loads((await next_event(stream, "standings", 30)).data)
            while rows(snapshot) != after_two:
                snapshot = orjson.loads((await next_event(stream, "standings", 30)).data)
            assert snapshot["matches"] == 2

        # SIGTERM while browsers watch: the owner first (its streams, the relayed one too, end), then the
        # other worker. Each exits cleanly and at once, without waiting for the viewers to leave.
        owner, viewer = owner_and_viewer(settings, (first, second))
        for worker in (owner, viewer):
            signalled = time.monotonic()
            code = await asyncio.to_thread(worker.stop, 30)
            took = time.monotonic() - signalled
            assert code == 0 and took < 15, (
                f"SIGTERM with a live stream open: exit {code} after {took:.1f} s; "
                f"log {worker.log_path}\n{worker.tail()}"
            )
        await asyncio.wait_for(asyncio.gather(*map(drain, streams)), 10)
    moved = {t for (t, rank, _) in after_two if dict((a, b) for a, b, _ in after_one)[t] != rank}
    assert moved, "the second match moved no team: the test data no longer exercises a rank change"


async def test_unknown_stage_and_tournament_are_clear_errors(settings, topics, start_worker):
    worker = start_worker()
    setup, _ = br_events(1)
    await produce(settings, setup)
    wait_until(lambda: json_standings(worker.url), 60, "standings")
    r = httpx.get(f"{worker.url}/tournaments/{T}/leaderboard", params={"stage": "nope"}, timeout=10)
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = httpx.get(f"{worker.url}/tournaments/{T}/leaderboard/events", params={"stage": "nope"}, timeout=10)
    assert r.status_code == 404 and "nope" in r.json()["error"]


async def test_relayed_stream_ends_when_the_owner_leaves_and_reconnects_to_the_new_owner(
    settings, topics, start_worker
):
    workers = wait_all_ready([start_worker(wait=False), start_worker(wait=False)])
    setup, later = br_events(2)
    await produce(settings, setup)
    after_one = wait_until(lambda: (s := json_standings(workers[0].url)) and s[0][2] > 0 and s, 60, "match 1 standings")
    owner, viewer = owner_and_viewer(settings, workers)
    url = f"{viewer.url}/tournaments/{T}/leaderboard/events"

    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client:
        async with client.stream("GET", url, params={"stage": "br-finals"}) as relayed:
            stream = events(relayed)
            assert rows(orjson.loads((await next_event(stream, "standings", 30)).data)) == after_one
            owner.stop(timeout=30)  # the owner leaves the group: its streams close, so does the relay
            await asyncio.wait_for(drain(stream), 60)

        # As EventSource does: reconnect to the same address until it answers; the viewer owns it now.
        deadline = time.monotonic() + 60
        while True:
            async with client.stream("GET", url, params={"stage": "br-finals"}) as direct:
                if direct.status_code == 200:
                    stream = events(direct)
                    assert rows(orjson.loads((await next_event(stream, "standings", 30)).data)) == after_one
                    await produce(settings, later)
                    snapshot = orjson.loads((await next_event(stream, "standings", 60)).data)
                    while snapshot["matches"] < 2:
                        snapshot = orjson.loads((await next_event(stream, "standings", 60)).data)
                    break
                assert direct.status_code == 503, await direct.aread()
            assert time.monotonic() < deadline, "the stream never came back after the owner left"
            await asyncio.sleep(1)
    assert rows(snapshot) == json_standings(viewer.url)


async def test_a_swiss_stage_has_its_live_page_updated_round_by_round(settings, topics, start_worker):
    from crownstream.demo.tournament import SWISS_STAGE

    first, second = wait_all_ready([start_worker(wait=False), start_worker(wait=False)])
    swiss = [e for e in demo_tournament(T, seed=7, swiss=True) if e.get("stage_id") == SWISS_STAGE]
    config, games = swiss[0], swiss[1:]
    round_one = [e for e in games if "-r1-" in e["result"]["series_id"]]
    await produce(settings, [config])
    for worker in (first, second):
        page = wait_until(
            lambda w=worker: (
                (
                    r := httpx.get(f"{w.url}/tournaments/{T}/leaderboard", params={"stage": SWISS_STAGE}, timeout=10)
                ).status_code
                == 200
                and r
            ),
            60,
            "the Swiss stage's page",
        )
        assert '<th class="points">W-L</th>' in page.text and "Difficulty" in page.text
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client,
        client.stream("GET", f"{second.url}/tournaments/{T}/leaderboard/events", params={"stage": SWISS_STAGE}) as r,
    ):
        assert r.status_code == 200
        stream = events(r)
        snapshot = orjson.loads((await next_event(stream, "standings", 30)).data)
        assert snapshot["format"] == "swiss" and {row["record"] for row in snapshot["standings"]} == {"0-0"}
        await produce(settings, round_one)
        while sorted(row["record"] for row in snapshot["standings"]) != ["0-1"] * 4 + ["1-0"] * 4:
            snapshot = orjson.loads((await next_event(stream, "standings", 30)).data)
        await produce(settings, games[len(round_one) :])
        while any(row["status"] == "playing" for row in snapshot["standings"]):
            snapshot = orjson.loads((await next_event(stream, "standings", 30)).data)
        assert sorted(row["status"] for row in snapshot["standings"]) == ["advanced"] * 4 + ["eliminated"] * 4
        assert snapshot["matches"] == 10
