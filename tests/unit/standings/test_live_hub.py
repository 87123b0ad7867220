"""The worker-local broadcast behind live leaderboard pages (standings/live.py)."""

from __future__ import annotations

import asyncio

import pytest

from crownstream.standings.live import Hub, StreamClosed


async def test_subscriber_wakes_on_its_stage_only():
    hub = Hub()
    async with hub.subscribe("t1", "s1") as mine, hub.subscribe("t1", "s2") as other:
        hub.publish("t1", "s1")
        assert await mine.changed(timeout=1) == 1
        assert await other.changed(timeout=0.05) is None


async def test_a_burst_of_changes_is_one_wakeup_with_the_latest_version():
    hub = Hub()
    async with hub.subscribe("t", "s") as sub:
        for _ in range(10):
            hub.publish("t", "s")
        assert await sub.changed(timeout=1) == 10
        assert await sub.changed(timeout=0.05) is None  # nothing new since


async def test_a_subscriber_starts_from_the_current_version():
    hub = Hub()
    hub.publish("t", "s")
    hub.publish("t", "s")
    async with hub.subscribe("t", "s") as sub:
        assert sub.seen == 2
        assert await sub.changed(timeout=0.05) is None
        hub.publish("t", "s")
        assert await sub.changed(timeout=1) == 3


async def test_waiting_subscriber_is_woken_by_a_later_publish():
    hub = Hub()
    async with hub.subscribe("t", "s") as sub:
        waiter = asyncio.ensure_future(sub.changed(timeout=5))
        await asyncio.sleep(0)
        assert not waiter.done()
        hub.publish("t", "s")
        assert await waiter == 1


async def test_close_all_ends_streams_after_pending_changes_and_unsubscribing_cleans_up():
    hub = Hub()
    async with hub.subscribe("t", "s") as sub:
        hub.publish("t", "s")
        assert hub.close_all() == 1
        assert await sub.changed(timeout=1) == 1  # a pending change is still delivered
        with pytest.raises(StreamClosed):
            await sub.changed(timeout=1)
    assert hub.subscribers() == 0
    async with hub.subscribe("t", "s") as fresh:  # a reconnect after close_all is a normal subscription
        hub.publish("t", "s")
        assert await fresh.changed(timeout=1) == 2
