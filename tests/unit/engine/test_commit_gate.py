"""The commit gate (crownstream/engine/commit_gate.py): a commit never runs while an event of its partition is being
processed, new events wait for a pending commit, and a crashed agent's hold does not block commits."""

from __future__ import annotations

import asyncio

from crownstream.engine.commit_gate import CommitGate


async def test_a_commit_waits_for_the_events_inside_and_new_events_wait_for_the_commit():
    gates = CommitGate()
    order: list[str] = []
    first = await gates.hold("app-1-0")
    second = await gates.hold("app-1-0")  # two agents of one partition at once

    async def commit():
        async with gates.committing(["app-1-0"]):
            order.append("commit")

    async def next_event():
        hold = await gates.hold("app-1-0")
        order.append("next event")
        gates.release(hold)

    committer = asyncio.create_task(commit())
    await asyncio.sleep(0.01)
    late = asyncio.create_task(next_event())  # arrives while the commit waits: goes after it
    await asyncio.sleep(0.01)
    assert order == []
    gates.release(first)
    await asyncio.sleep(0.01)
    assert order == []  # one event still inside
    gates.release(second)
    await asyncio.gather(committer, late)
    assert order == ["commit", "next event"]


async def test_other_partitions_are_not_held_up():
    gates = CommitGate()
    await gates.hold("app-1-0")
    async with asyncio.timeout(1):
        async with gates.committing(["app-1-1"]):
            pass


async def test_a_crashed_agents_hold_is_released_once_and_its_generator_can_finish_later():
    gates = CommitGate()

    async def agent():
        await gates.hold("app-1-3")
        return asyncio.current_task()

    task = asyncio.create_task(agent())
    crashed = await task
    hold = next(iter(gates._holds[crashed]))
    assert gates.release_task(crashed) == 1
    async with asyncio.timeout(1):
        async with gates.committing(["app-1-3"]):
            pass
    gates.release(hold)  # the suspended generator's finally, run later by the finalizer: no double leave
    assert gates.gate("app-1-3").inside == 0


async def test_a_hold_can_be_released_from_another_task():
    gates = CommitGate()
    hold = await gates.hold("app-1-2")
    await asyncio.create_task(_release(gates, hold))  # an async generator's finalizer runs in a task of its own
    async with asyncio.timeout(1):
        async with gates.committing(["app-1-2"]):
            pass


async def _release(gates, hold) -> None:
    gates.release(hold)


async def test_the_snapshot_shows_a_commit_stalled_behind_an_event_inside():
    gates = CommitGate()
    hold = await gates.hold("app-1-0")
    await gates.hold("app-1-1")
    committer = asyncio.create_task(_commit(gates, "app-1-0"))
    await asyncio.sleep(0.01)
    assert gates.snapshot() == {"app-1-0": {"inside": 1, "committers": 1}, "app-1-1": {"inside": 1, "committers": 0}}
    gates.release(hold)
    await committer
    assert gates.snapshot()["app-1-0"] == {"inside": 0, "committers": 0}


async def _commit(gates: CommitGate, transactional_id: str) -> None:
    async with gates.committing([transactional_id]):
        pass
