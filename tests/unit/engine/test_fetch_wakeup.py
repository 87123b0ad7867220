"""The fetch loop wakes when partitions resume (crownstream/engine/consumer.py, UPSTREAM.md F25).

Faust's ``Consumer._wait_next_records`` sleeps a whole second when no partition is active — all of a rebalance's
recovery, which pauses every partition — and asks for records of the partitions active when it asked with a 1-s
timeout. The partitions resumed when the recovery completes waited that out: about a second of each rebalance's
pause. Here the consumer is the worker's, its fetcher a stand-in; no broker is involved."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP

from crownstream.engine.consumer import _Consumer
from crownstream.engine.state import EngineState, attach

USERS = TP("cs.notification-users", 3)
CHANGELOG = TP("cs-notification-users-changelog", 5)


class App:
    client_only = False

    def __init__(self) -> None:
        attach(
            self,
            EngineState(settings=SimpleNamespace(consumer_fetch_max_wait_ms=200), commit_gate=None, state_repair=None),
        )


def consumer(cls: type, active: set[TP], paused: set[TP]) -> Any:
    consumer = object.__new__(cls)
    consumer.app = App()
    consumer.flow_active = True
    consumer._active_partitions = set(active)
    consumer._paused_partitions = set(paused)
    consumer._deferred_resumes = None
    consumer.not_waiting_next_records = asyncio.Event()
    consumer.asked: list[tuple[set[TP], float]] = []

    async def getmany(active_partitions: set[TP], timeout: float) -> dict:
        consumer.asked.append((set(active_partitions), timeout))
        return {}

    async def never(seconds: float) -> None:  # Faust's 1-s sleep, made endless: a loop that sleeps never wakes here
        await asyncio.Event().wait()

    consumer._getmany = getmany
    consumer.sleep = never
    return consumer


async def test_a_loop_with_every_partition_paused_wakes_when_they_resume():
    paused = consumer(_Consumer, active=set(), paused={USERS})
    waiting = asyncio.create_task(paused._wait_next_records(30.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # nothing to fetch: it waits
    paused.resume_partitions({USERS})  # the recovery completed
    assert await asyncio.wait_for(waiting, 5) == ({}, set())  # at once, not after Faust's second
    await paused._wait_next_records(30.0)
    assert paused.asked == [({USERS}, 0.2)]  # the next one fetches the resumed partition


async def test_a_wait_for_records_lasts_at_most_the_brokers_long_poll():
    standby = consumer(_Consumer, active={CHANGELOG}, paused={USERS})
    await standby._wait_next_records(1.0)
    assert standby.asked == [({CHANGELOG}, 0.2)]  # then the active partitions are read again


async def test_faust_sleeps_a_second_whatever_resumes():
    """The upstream behaviour F25 replaces (removable when this fails)."""
    paused = consumer(Consumer, active=set(), paused={USERS})
    waiting = asyncio.create_task(Consumer._wait_next_records(paused, 30.0))
    await asyncio.sleep(0.01)
    Consumer.resume_partitions(paused, {USERS})
    await asyncio.sleep(0.05)
    assert not waiting.done()  # still in its sleep
    waiting.cancel()


async def test_after_a_rebalance_the_first_wait_is_capped_too():
    """The flow resumes before the stream partitions do: the first wait after a rebalance is for the standby
    changelogs alone, and lasted Faust's whole second (1.00 s from "Worker ready" to the first event, every pause)."""
    rebalancing = consumer(_Consumer, active={CHANGELOG}, paused={USERS})
    rebalancing.flow_active = False
    rebalancing.can_resume_flow = asyncio.Event()

    async def wait(event: asyncio.Event) -> None:  # mode's Service.wait, for an event
        await event.wait()

    rebalancing.wait = wait
    waiting = asyncio.create_task(rebalancing._wait_next_records(1.0))
    await asyncio.sleep(0.01)
    assert rebalancing.asked == []  # flow stopped: nothing is fetched
    rebalancing.flow_active = True
    rebalancing.can_resume_flow.set()
    await asyncio.wait_for(waiting, 5)
    assert rebalancing.asked == [({CHANGELOG}, 0.2)]
