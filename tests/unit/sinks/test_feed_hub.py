"""The worker-local fan-out of feed changes to live streams, and the listener's DSN (no database here)."""

from __future__ import annotations

import asyncio

import pytest

from crownstream.sinks.feed_hub import FeedHub, Wake
from crownstream.sinks.feed_live import _where, asyncpg_dsn


async def test_a_wake_reaches_only_that_users_streams():
    hub = FeedHub()
    with hub.subscribe("ada") as ada1, hub.subscribe("ada") as ada2, hub.subscribe("bob") as bob:
        assert hub.wake("ada") == 2
        assert await ada1.wait(1) is Wake.CHANGED
        assert await ada2.wait(1) is Wake.CHANGED
        assert await bob.wait(0.05) is Wake.TIMEOUT
        assert hub.wake("nobody") == 0


async def test_wakes_in_a_burst_fold_into_one_and_a_wake_before_the_wait_counts():
    hub = FeedHub()
    with hub.subscribe("ada") as sub:
        for _ in range(10):
            hub.wake("ada")
        assert await sub.wait(1) is Wake.CHANGED
        assert await sub.wait(0.05) is Wake.TIMEOUT  # the ten were one


async def test_a_waiting_stream_is_woken_while_it_waits():
    hub = FeedHub()
    with hub.subscribe("ada") as sub:
        waiting = asyncio.ensure_future(sub.wait(5))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        hub.wake("ada")
        assert await asyncio.wait_for(waiting, 1) is Wake.CHANGED


async def test_wake_all_and_close_all():
    hub = FeedHub()
    with hub.subscribe("ada") as ada, hub.subscribe("bob") as bob:
        assert hub.wake_all() == 2
        assert await ada.wait(1) is Wake.CHANGED and await bob.wait(1) is Wake.CHANGED
        hub.wake("ada")
        assert hub.close_all() == 2
        assert await ada.wait(1) is Wake.CLOSED  # closing wins over a pending change
        assert await bob.wait(1) is Wake.CLOSED


def test_streams_are_counted_and_forgotten_when_they_end():
    hub = FeedHub()
    with hub.subscribe("ada"), hub.subscribe("ada"), hub.subscribe("bob"):
        assert (hub.streams("ada"), hub.streams("bob"), hub.streams()) == (2, 1, 3)
    assert hub.streams() == 0 and hub._streams == {}  # no entry left per user that ever streamed


@pytest.mark.parametrize(
    ("per_user", "total", "refused_because"),
    [(2, 100, "MAX_PER_USER"), (5, 3, "MAX_PER_WORKER"), (3, 4, None)],
)
def test_limits_on_open_streams(per_user, total, refused_because):
    hub = FeedHub()
    with hub.subscribe("ada"), hub.subscribe("ada"), hub.subscribe("bob"):
        refusal = hub.refusal("ada", per_user, total)
        if refused_because is None:
            assert refusal is None
        else:
            assert refusal is not None and refused_because in refusal and "retry" in refusal
    assert hub.refusal("ada", 1, 1) is None  # all closed again


def test_asyncpg_dsn_from_the_sqlalchemy_url_and_logs_without_the_password():
    url = "postgresql+asyncpg://cs:s3cr%40t@db.internal:5433/crownstream?ssl=require"
    dsn = asyncpg_dsn(url)
    assert dsn.startswith("postgresql://cs:s3cr%40t@db.internal:5433/crownstream")
    assert "ssl=require" in dsn
    assert _where(url) == "db.internal:5433/crownstream"
