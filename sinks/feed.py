"""In-app feed sink and store. The feed is in the same database as the ledger, so here exactly-once is
exact: the feed row and the ledger row commit in one transaction — there is no crash window at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crownstream.schemas.deliveries import DeliveryRequest
from crownstream.sinks.base import Sink
from crownstream.sinks.feed_states import ACTIONS, Selection
from crownstream.sinks.ledger import Claimed, Outcome, ledger_row
from crownstream.sinks.tables import deliveries, feed_items


def feed_row(request: DeliveryRequest) -> dict[str, Any]:
    data = dict(request.data)
    if request.items:
        data["items"] = [item.model_dump(mode="json") for item in request.items]
    return {
        "dedup_key": request.dedup_key,
        "user_id": request.user_id,
        "notification_type": request.notification_type,
        "tournament_id": request.tournament_id,
        "title": request.title,
        "body": request.body,
        "url": request.url,
        "data": data,
        "critical": request.critical,
        "occurred_at": request.created_at,
    }


class FeedSink(Sink):
    channel = "in_app"

    async def accept(self, requests: Sequence[DeliveryRequest]) -> None:
        if not requests:
            return
        rows = [{**ledger_row(r), "state": "sent", "attempt_count": 1, "sent_at": func.now()} for r in requests]
        # In user order: each row's insert locks its user until commit (migration 0008, feed_items_order), and two
        # batches taking the same users' locks in different orders could deadlock.
        items = sorted((feed_row(r) for r in requests), key=lambda row: row["user_id"])
        async with self.ledger.engine.begin() as conn:
            await conn.execute(insert(feed_items).on_conflict_do_nothing(index_elements=["dedup_key"]), items)
            await conn.execute(
                insert(deliveries).values(sent_at=func.now()).on_conflict_do_nothing(),
                [{k: v for k, v in row.items() if k != "sent_at"} for row in rows],
            )

    async def deliver(self, claimed: Claimed) -> Outcome:
        # Only rows revived from the dead-letter topic get here; accept() writes the others as sent.
        async with self.ledger.engine.begin() as conn:
            await conn.execute(
                insert(feed_items).on_conflict_do_nothing(index_elements=["dedup_key"]), [feed_row(claimed.request)]
            )
        return Outcome.sent()


async def list_feed(
    engine: AsyncEngine,
    user_id: str,
    limit: int = 20,
    before: int | None = None,
    unread_only: bool = False,
    archived: bool = False,
) -> dict[str, Any]:
    """Newest first, keyset-paged by id (``before`` = the previous page's ``next_before``). Archived items are left
    out, or with ``archived=True`` they are the only ones listed."""
    query = select(feed_items).where(feed_items.c.user_id == user_id)
    query = query.where(feed_items.c.archived_at.is_not(None) if archived else feed_items.c.archived_at.is_(None))
    if before is not None:
        query = query.where(feed_items.c.id < before)
    if unread_only:
        query = query.where(feed_items.c.read_at.is_(None))
    query = query.order_by(feed_items.c.id.desc()).limit(limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        counts = await _counts(conn, user_id)
    page = rows[:limit]
    return {
        "user_id": user_id,
        **counts,
        "items": [feed_item(row) for row in page],
        "next_before": page[-1].id if len(rows) > limit else None,
    }


async def _counts(conn: AsyncConnection, user_id: str) -> dict[str, int]:
    """Unread (not opened) and unseen (the badge's "new") items of the user; archived ones count in neither."""
    live = (feed_items.c.user_id == user_id, feed_items.c.archived_at.is_(None))
    unread = select(func.count()).select_from(feed_items).where(*live, feed_items.c.read_at.is_(None))
    unseen = select(func.count()).select_from(feed_items).where(*live, feed_items.c.seen_at.is_(None))
    row = (await conn.execute(select(unread.scalar_subquery(), unseen.scalar_subquery()))).one()
    return {"unread_count": row[0], "unseen_count": row[1]}


async def feed_counts(engine: AsyncEngine, user_id: str) -> dict[str, int]:
    async with engine.connect() as conn:
        return await _counts(conn, user_id)


async def items_after(engine: AsyncEngine, user_id: str, after: int, limit: int) -> tuple[list[dict], dict[str, int]]:
    """The user's items with an id above ``after``, oldest first (at most ``limit``; archived ones left out), and
    the counts, read on one connection. Complete for any ``after`` a caller got from here: a user's items become
    visible in id order (migration 0008), so none can appear later below an id already returned."""
    query = (
        select(feed_items)
        .where(feed_items.c.user_id == user_id, feed_items.c.id > after, feed_items.c.archived_at.is_(None))
        .order_by(feed_items.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        counts = await _counts(conn, user_id)
    return [feed_item(row) for row in rows], counts


async def latest_id(engine: AsyncEngine, user_id: str) -> int:
    """The id of the user's newest item, archived or not (0: none): where a stream without a cursor starts."""
    async with engine.connect() as conn:
        value = await conn.scalar(select(func.max(feed_items.c.id)).where(feed_items.c.user_id == user_id))
    return int(value or 0)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def feed_item(row) -> dict[str, Any]:
    iso = _iso
    return {
        "id": row.id,
        "dedup_key": row.dedup_key,
        "notification_type": row.notification_type,
        "tournament_id": row.tournament_id,
        "title": row.title,
        "body": row.body,
        "url": row.url,
        "data": row.data,
        "critical": row.critical,
        "occurred_at": iso(row.occurred_at),
        "created_at": iso(row.created_at),
        "seen": row.seen_at is not None,
        "seen_at": iso(row.seen_at),
        "read": row.read_at is not None,
        "read_at": iso(row.read_at),
        "archived": row.archived_at is not None,
        "archived_at": iso(row.archived_at),
    }


async def mark_read(engine: AsyncEngine, user_id: str, ids: Sequence[int] | None = None) -> int:
    """Mark the given items (or, with ``ids=None``, all) of the user read; returns how many changed."""
    return await change_state(engine, user_id, "read", Selection(ids=None if ids is None else tuple(ids)))


async def change_state(engine: AsyncEngine, user_id: str, action: str, selection: Selection) -> int:
    """Apply ``action`` (feed_states.ACTIONS) to the user's selected items; returns how many changed. Idempotent:
    an item already in the state is left alone (and not counted), and only the user's own items are touched."""
    change = ACTIONS[action]
    column = feed_items.c[change.column]
    query = update(feed_items).where(
        feed_items.c.user_id == user_id, column.is_(None) if change.set else column.is_not(None)
    )
    if selection.ids is not None:
        query = query.where(feed_items.c.id.in_(list(selection.ids)))
    if selection.up_to is not None:
        query = query.where(feed_items.c.id <= selection.up_to)
    values: dict[str, Any] = {change.column: func.now() if change.set else None}
    if change.column == "read_at":
        values["seen_at"] = func.coalesce(feed_items.c.seen_at, func.now())  # an item opened was seen
    async with engine.begin() as conn:
        return (await conn.execute(query.values(**values))).rowcount


async def prune_feed(engine: AsyncEngine, days: int) -> int:
    """Delete items read or archived more than ``days`` ago; unread ones in the list are kept whatever their age."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                "DELETE FROM feed_items WHERE read_at < now() - make_interval(days => :d) "
                "OR archived_at < now() - make_interval(days => :d)"
            ),
            {"d": days},
        )
        return result.rowcount
