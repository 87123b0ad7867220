"""The in-app feed's states (seen, read, archived) and what its live push relies on, against the real PostgreSQL:
a user's items become visible in id order whoever writes them, and every committed change — only committed ones —
is announced on the feed channel."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import func, insert, select, text, update

from crownstream.settings import Settings
from crownstream.sinks.feed import (
    FeedSink,
    change_state,
    feed_counts,
    feed_row,
    items_after,
    latest_id,
    list_feed,
    prune_feed,
)
from crownstream.sinks.feed_live import CHANNEL, asyncpg_dsn
from crownstream.sinks.feed_states import Selection
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.tables import feed_items
from tests.support.sinks import make_request


async def write(engine, user: str, numbers) -> list[int]:
    """Items of ``user`` written by the feed sink (as a worker writes them); their ids, oldest first."""
    sink = FeedSink(Settings(), Ledger(engine))
    await sink.accept([make_request(i, "in_app", user) for i in numbers])
    async with engine.connect() as conn:
        return list(
            (await conn.execute(select(feed_items.c.id).where(feed_items.c.user_id == user).order_by("id"))).scalars()
        )


def ids_of(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


async def test_seen_read_archived_and_the_counts(engine):
    ada = await write(engine, "ada", range(6))
    bob = await write(engine, "bob", range(100, 103))
    page = await list_feed(engine, "ada")
    assert (page["unread_count"], page["unseen_count"]) == (6, 6)
    assert not any(i["seen"] or i["read"] or i["archived"] for i in page["items"])

    # The bell showed the newest four: all seen up to the fourth, the badge's "new" count drops; unread stays.
    assert await change_state(engine, "ada", "seen", Selection(up_to=ada[3])) == 4
    assert await change_state(engine, "ada", "seen", Selection(up_to=ada[3])) == 0  # idempotent
    assert await feed_counts(engine, "ada") == {"unread_count": 6, "unseen_count": 2}

    # Opening the newest (unseen) item reads it and sees it.
    assert await change_state(engine, "ada", "read", Selection(ids=(ada[5],))) == 1
    assert await change_state(engine, "ada", "read", Selection(ids=(ada[5],))) == 0
    assert await feed_counts(engine, "ada") == {"unread_count": 5, "unseen_count": 1}
    [newest] = [i for i in (await list_feed(engine, "ada"))["items"] if i["id"] == ada[5]]
    assert newest["read"] and newest["seen"] and newest["seen_at"] == newest["read_at"]

    # Archived: out of the default list and of both counts, listed with the filter, and back when un-archived.
    assert await change_state(engine, "ada", "archive", Selection(ids=(ada[0], ada[4], ada[5]))) == 3
    assert ids_of(await list_feed(engine, "ada")) == [ada[3], ada[2], ada[1]]
    assert ids_of(await list_feed(engine, "ada", archived=True)) == [ada[5], ada[4], ada[0]]
    assert ids_of(await list_feed(engine, "ada", unread_only=True)) == [ada[3], ada[2], ada[1]]
    assert await feed_counts(engine, "ada") == {"unread_count": 3, "unseen_count": 0}
    assert await change_state(engine, "ada", "archive", Selection(ids=(ada[0],))) == 0
    assert await change_state(engine, "ada", "unarchive", Selection(ids=(ada[4],))) == 1
    assert await change_state(engine, "ada", "unarchive", Selection(ids=(ada[4],))) == 0
    assert await feed_counts(engine, "ada") == {"unread_count": 4, "unseen_count": 1}
    # The live stream's reads leave archived items out too.
    items, counts = await items_after(engine, "ada", 0, 100)
    assert [i["id"] for i in items] == [ada[1], ada[2], ada[3], ada[4]]
    assert counts == {"unread_count": 4, "unseen_count": 1}
    assert await latest_id(engine, "ada") == ada[5] and await latest_id(engine, "nobody") == 0

    # All read: the four listed and the archived one never opened; what is archived stays archived.
    assert await change_state(engine, "ada", "read", Selection()) == 5
    assert await feed_counts(engine, "ada") == {"unread_count": 0, "unseen_count": 0}
    assert len((await list_feed(engine, "ada", archived=True))["items"]) == 2

    # Nothing of it touched bob, and bob's changes naming ada's ids change nothing of hers.
    assert await feed_counts(engine, "bob") == {"unread_count": 3, "unseen_count": 3}
    before = await list_feed(engine, "ada", limit=100)
    for action in ("seen", "read", "archive", "unarchive"):
        assert await change_state(engine, "bob", action, Selection(ids=tuple(ada))) == 0
    assert await list_feed(engine, "ada", limit=100) == before
    assert await change_state(engine, "bob", "archive", Selection(up_to=max(bob))) == 3


async def test_prune_drops_items_read_or_archived_long_ago_and_keeps_the_rest(engine):
    ada = await write(engine, "ada", range(4))
    await change_state(engine, "ada", "read", Selection(ids=(ada[0],)))
    await change_state(engine, "ada", "archive", Selection(ids=(ada[1],)))
    async with engine.begin() as conn:
        old = func.now() - text("interval '100 days'")
        await conn.execute(update(feed_items).where(feed_items.c.id == ada[0]).values(read_at=old))
        await conn.execute(update(feed_items).where(feed_items.c.id == ada[1]).values(archived_at=old))
        await conn.execute(update(feed_items).where(feed_items.c.id == ada[2]).values(created_at=old))
    assert await prune_feed(engine, 90) == 2
    assert sorted(ids_of(await list_feed(engine, "ada"))) == [ada[2], ada[3]]  # old but unread: kept


async def test_a_users_items_become_visible_in_id_order_whoever_writes_them(engine):
    """Two transactions writing to one user: the second waits for the first, so it can never commit a lower id after
    a reader moved past a higher one (what a live stream's cursor relies on). Another user's writes do not wait."""
    await write(engine, "ada", [0])
    first = engine.connect()
    conn1 = await first.__aenter__()
    tx1 = await conn1.begin()
    await conn1.execute(insert(feed_items), [feed_row(make_request(1, "in_app", "ada"))])

    second = asyncio.ensure_future(write(engine, "ada", [2]))
    await asyncio.sleep(0.5)
    assert not second.done(), "a second writer of ada's feed went ahead of an open transaction writing to it"
    assert len(await write(engine, "bob", [3])) == 1  # another user's write: not held up
    # A reader now sees only ada's first item; nothing it could skip is committed above it.
    items, _ = await items_after(engine, "ada", 0, 10)
    assert len(items) == 1
    await tx1.commit()
    await first.__aexit__(None, None, None)
    ids = await asyncio.wait_for(second, 10)
    titles = [i["title"] for i in (await items_after(engine, "ada", 0, 10))[0]]
    assert titles == ["Notification 0", "Notification 1", "Notification 2"]  # id order = commit order
    assert ids == sorted(ids) and len(ids) == 3


@pytest.fixture
async def listening(database_url, engine):
    """A raw connection LISTENing on the feed channel, as a worker's listener; yields the payloads received."""
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: received.put_nowait(payload))
    yield received
    await conn.close()


async def announced(received: asyncio.Queue, wait: float = 0.5) -> list[str]:
    await asyncio.sleep(wait)
    out = []
    while not received.empty():
        out.append(received.get_nowait())
    return out


async def test_committed_changes_are_announced_once_per_user_and_transaction(engine, listening):
    await write(engine, "ada", range(3))
    assert await announced(listening) == ["ada"]  # three rows, one transaction: one announcement
    await write(engine, "ada", range(3))  # the same requests again: nothing new
    assert await announced(listening) == []

    # Not before the commit, and never for a transaction rolled back.
    async with engine.connect() as conn:
        tx = await conn.begin()
        await conn.execute(insert(feed_items), [feed_row(make_request(7, "in_app", "bob"))])
        assert await announced(listening) == []
        await tx.rollback()
    assert await announced(listening) == []
    assert await feed_counts(engine, "bob") == {"unread_count": 0, "unseen_count": 0}

    # A state change is announced (the counts change); one that changes nothing is not.
    assert await change_state(engine, "ada", "seen", Selection()) == 3
    assert await announced(listening) == ["ada"]
    assert await change_state(engine, "ada", "seen", Selection()) == 0
    assert await announced(listening) == []
    sink = FeedSink(Settings(), Ledger(engine))
    await sink.accept([make_request(20, "in_app", "carol"), make_request(21, "in_app", "ada")])
    assert sorted(await announced(listening)) == ["ada", "carol"]
