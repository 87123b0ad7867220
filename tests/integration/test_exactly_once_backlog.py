"""A backlog of records from an upstream transactional producer, spread over several partitions and fanned out by a
stateless agent, with the worker killed (SIGKILL) while it works through it: the worker that takes over commits every
delivery request once, none of them again (#15).

Two defects committed an event's outputs in transactions whose offsets did not cover the event; the fan-out to users
keeps no state that tells a re-read record from a new one, so the worker that took over committed those requests a
second time (the repeats of the operations scenario's catch-up after its broker restart):
- every transaction marker of the input (a gap in its offsets) held Faust's committed offset back a commit interval
  (UPSTREAM.md F20): offsets advanced one upstream transaction per commit while processing went on;
- a micro-batch's first event stayed unacknowledged while other partitions' events kept the agent's channel busy
  (UPSTREAM.md B1): Faust hands records round-robin across partitions, so a backlog of several partitions
  interleaves in the channel.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from crownstream.streams.topics import DELIVERIES, NOTIFICATION_USERS
from tests.support.kafka_read import read_topics_to_end

pytestmark = pytest.mark.slow

RECORDS = 1200  # one delivery request each
PER_TRANSACTION = 12  # the upstream producer's transactions: a marker in each partition every few records


def notify(n: int) -> bytes:
    notice = {
        "type": "match.started",  # in-app only by default: one request per record
        "source": f"backlog-{n}",
        "created_at": "2026-11-24T18:30:00+00:00",
        "title": f"Match {n} started",
    }
    return orjson.dumps({"op": "notify", "notice": notice, "users": [f"user-{n:05d}"]})


async def requested(settings) -> Counter:
    """Committed in-app delivery requests, counted by dedup key."""
    topic = DELIVERIES["in_app"].full_name(settings)
    records = (await read_topics_to_end(settings.kafka_bootstrap, [topic]))[topic]
    return Counter(r["dedup_key"] for r in records)


async def wait_requested(settings, at_least: int, timeout: float) -> Counter:
    deadline = time.monotonic() + timeout
    while True:
        got = await requested(settings)
        if sum(got.values()) >= at_least or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.2)


async def produce_backlog(settings) -> None:
    topic = NOTIFICATION_USERS.full_name(settings)
    partitions = NOTIFICATION_USERS.partition_count(settings)
    # Written as our agents write it (the users topic is produced by the audience agents): in transactions.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, transactional_id=f"{settings.app_id}-test-upstream"
    )
    await producer.start()
    try:
        for start in range(0, RECORDS, PER_TRANSACTION):
            async with producer.transaction():
                for n in range(start, min(start + PER_TRANSACTION, RECORDS)):
                    await producer.send(topic, notify(n), key=f"user-{n:05d}".encode(), partition=n % partitions)
    finally:
        await producer.stop()


async def test_a_backlog_over_several_partitions_is_fanned_out_once_across_a_kill(settings, topics, start_worker):
    # Commits every 0.2 s: many transactions commit while the backlog is being worked through.
    first = start_worker(commit_interval_s=0.2)
    await produce_backlog(settings)
    before = await wait_requested(settings, RECORDS // 4, timeout=120)
    assert sum(before.values()) < RECORDS, "the backlog was done before the kill: nothing tested"
    first.kill()  # SIGKILL mid-backlog: its open transaction aborts, what it committed stays
    start_worker(commit_interval_s=0.2)
    after = await wait_requested(settings, RECORDS, timeout=180)
    await asyncio.sleep(2)  # a late repeat would show now
    after = await requested(settings)
    assert len(after) == RECORDS
    repeated = {key: n for key, n in after.items() if n > 1}
    assert not repeated, (
        f"{len(repeated)} of {RECORDS} delivery requests committed twice upstream "
        f"({sum(before.values())} were committed when the first worker was killed)"
    )


async def test_a_backlog_is_fanned_out_once_across_a_rebalance(settings, topics, start_worker):
    """A second worker joins mid-backlog: the first gives partitions up, and its revocation's last commit carries the
    offsets of everything it acknowledged (UPSTREAM.md F21). Faust dropped those offsets before that commit, which
    still committed the transactions holding the events' outputs."""
    start_worker(commit_interval_s=0.2)
    await produce_backlog(settings)
    before = await wait_requested(settings, RECORDS // 4, timeout=120)
    assert sum(before.values()) < RECORDS, "the backlog was done before the rebalance: nothing tested"
    start_worker(commit_interval_s=0.2)  # joins the group: a rebalance while the backlog is being worked through
    await wait_requested(settings, RECORDS, timeout=180)
    await asyncio.sleep(2)
    after = await requested(settings)
    assert len(after) == RECORDS
    repeated = {key: n for key, n in after.items() if n > 1}
    assert not repeated, (
        f"{len(repeated)} of {RECORDS} delivery requests committed twice upstream "
        f"({sum(before.values())} were committed when the second worker joined)"
    )
