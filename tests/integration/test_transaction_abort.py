"""A transaction aborted after its table writes reached the local store: the worker wipes that partition's
local state, restores it from the committed changelog and reprocesses the events, so their writes are
committed after all — and a fresh worker that recovers the partition from the changelog alone (the first one
killed with SIGKILL) has the full state.

The abort is forced with the ``fault_abort_after_sends`` test hook: the worker's first commit after that many
transactional sends aborts its open transactions instead — what a worker sees when its producer is fenced.
Without the wipe, the reprocessed match results are skipped as duplicates ("stored revision >= event
revision") and never reach the changelog, and the fresh worker's standings miss them."""

from __future__ import annotations

import asyncio
import collections
import re

import httpx
import pytest

from crownstream.demo.tournament import demo_tournament
from crownstream.streams.topics import STANDINGS_EVENTS
from tests.integration.test_standings_cluster import expected_standings, produce, standings_of, wait_until
from tests.support.kafka_read import read_topic

pytestmark = pytest.mark.slow

TOURNAMENT = "abort-cup"


def answered(ask, *args):
    """``ask(*args)``, or None while the worker is too busy to answer (a rebalance on a loaded machine)."""
    try:
        return ask(*args)
    except httpx.TimeoutException:
        return None


def wipes(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.findall(r'^crownstream_table_state_wipes_total\{cause="aborted"\} ([0-9.e+]+)$', text, re.M)
    return float(found[0]) if found else 0.0


async def committed_match_results(settings) -> set[tuple[str, int]]:
    """(match, revision) of every br-results write in the committed changelog."""
    records = await read_topic(settings.kafka_bootstrap, f"{settings.app_id}-br-results-changelog")
    return {(r["match_id"], r["revision"]) for r in records if r}


async def test_aborted_writes_are_wiped_reprocessed_and_committed(settings, topics, start_worker):
    events = [e for e in demo_tournament(TOURNAMENT, seed=3, br_matches=8) if e.get("stage_id") != "group-a"]
    completed = [e for e in events if e["type"] == "match.completed" and e["stage_id"] == "br-finals"]
    # Latest revision per match: what the changelog must end up holding. The highest, not the last to arrive: a
    # stale revision (br-m3's 1 after its 2) is refused, and a revision superseded within one micro-batch never
    # reaches the changelog at all (the write cache keeps a key's last value).
    latest: dict[str, int] = {}
    for e in completed:
        latest[e["match_id"]] = max(latest.get(e["match_id"], 0), e["revision"])
    final_results = set(latest.items())
    split = events.index(completed[3]) + 1  # stage, teams and the first results (one of them revised)

    first = start_worker(fault_abort_after_sends=1)
    await produce(settings, events[:split])
    # The first commit holding table writes is aborted; the worker wipes that partition and replays it.
    wait_until(lambda: (answered(wipes, first.url) or 0) >= 1, 90, "the aborted transaction's partition to be wiped")
    so_far = expected_standings(events[:split], TOURNAMENT)
    wait_until(lambda: answered(standings_of, first.url, TOURNAMENT) == so_far, 90, "standings after the replay")

    await produce(settings, events[split:])
    expected = expected_standings(events, TOURNAMENT)
    wait_until(
        lambda: answered(standings_of, first.url, TOURNAMENT) == expected, 90, "final standings on the first worker"
    )
    assert wipes(first.url) == 1  # the hook fires once; nothing else ended uncommitted
    log = first.log_path.read_text(errors="replace")
    assert re.search(r"wiped local state of partition \d+ .*\(aborted: transaction aborted\)", log), first.tail()

    # Every result's write is in the committed changelog, including those first written in the aborted
    # transaction (their reprocessing must have applied them again, not skipped them as duplicates).
    changelog: set[tuple[str, int]] = set()
    for _ in range(30):
        changelog = await committed_match_results(settings)
        if final_results <= changelog:
            break
    assert final_results <= changelog, f"missing from the committed changelog: {sorted(final_results - changelog)}"

    first.kill()
    # A fresh worker (empty data dir) knows only the committed changelog and committed offsets.
    fresh = start_worker()
    wait_until(
        lambda: answered(standings_of, fresh.url, TOURNAMENT) == expected, 90, "final standings on a fresh worker"
    )
    assert wipes(fresh.url) == 0

    outputs = await read_topic(settings.kafka_bootstrap, STANDINGS_EVENTS.full_name(settings))
    ids = collections.Counter(o["event_id"] for o in outputs)
    assert not [i for i, n in ids.items() if n > 1], "outputs committed more than once"
    finals = [o for o in outputs if o["type"] == "standings.finalized" and o["tournament_id"] == TOURNAMENT]
    assert len(finals) == 1
    assert [(p["team_id"], p["points"]) for p in finals[0]["placements"]] == expected


async def fence(settings, groups: int = 8) -> int:
    """Fence every transactional producer the worker can hold: initialise a producer under each of its
    transactional ids (``{app id}-{topic group}-{partition}``), as a member that took its partitions would.
    Returns how many ids were fenced."""
    from aiokafka import AIOKafkaProducer

    fenced = 0
    for group in range(groups):
        for partition in range(settings.topic_partitions):
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                transactional_id=f"{settings.app_id}-{group}-{partition}",
                enable_idempotence=True,
            )
            await producer.start()  # InitProducerId: bumps the epoch, the worker's producer is fenced
            await producer.stop()
            fenced += 1
    return fenced


async def test_a_fenced_worker_loses_its_open_batches_rejoins_and_misses_nothing(settings, topics, start_worker):
    """Every transactional producer of a running worker fenced while events flow (what a member that took its
    partitions does when this worker missed its session timeout): its sends and commits fail. The worker must
    neither crash nor restart an agent, nor dead-letter the records it was on as if they were bad: it loses the
    open batches, rejoins (fresh producers), restores the partitions they touched and processes their events again
    — standings exact, every output committed once. Without the fix Faust crashed the app on ProducerFenced, or the
    agents on IllegalOperation ("Can't send messages while not in transaction") after dead-lettering good records."""
    events = [e for e in demo_tournament(TOURNAMENT, seed=5, br_matches=8) if e.get("stage_id") != "group-a"]
    split = len(events) // 2
    worker = start_worker()
    await produce(settings, events[:split])
    so_far = expected_standings(events[:split], TOURNAMENT)
    wait_until(lambda: answered(standings_of, worker.url, TOURNAMENT) == so_far, 90, "standings before the fencing")

    assert await fence(settings) > 0
    await produce(settings, events[split:])
    expected = expected_standings(events, TOURNAMENT)
    wait_until(lambda: answered(standings_of, worker.url, TOURNAMENT) == expected, 120, "standings after the fencing")

    assert worker.alive(), worker.tail()
    log = worker.log_path.read_text(errors="replace")
    assert "could not take effect" in log or "could not end" in log, worker.tail()  # the fencing was met
    for crash in ("Crashed reason", "Restarting dead", "handler failed; record dead-lettered"):
        assert crash not in log, worker.tail()
    finals: list[dict] = []
    for _ in range(30):  # the finalization commits with its batch, possibly after the standings were served
        outputs = await read_topic(settings.kafka_bootstrap, STANDINGS_EVENTS.full_name(settings))
        finals = [o for o in outputs if o["type"] == "standings.finalized" and o["tournament_id"] == TOURNAMENT]
        if finals:
            break
        await asyncio.sleep(1)
    ids = collections.Counter(o["event_id"] for o in outputs)
    assert not [i for i, n in ids.items() if n > 1], "outputs committed more than once"
    assert len(finals) == 1
