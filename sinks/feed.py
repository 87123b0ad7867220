"""In-app feed sink and store. The feed is in the same database as the ledger, so here exactly-once is
exact: the feed row and the ledger row commit in one transaction — there is no crash window at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from crownstream.schemas.deliveries import DeliveryRequest
from crownstream.sinks.base import Sink
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
        async with self.ledger.engine.begin() as conn:
            await conn.execute(
                insert(feed_items).on_conflict_do_nothing(index_elements=["dedup_key"]), [feed_row(r) for r in requests]
            )
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
    engine: AsyncEngine, user_id: str, limit: int = 20, before: int | None = None, unread_only: bool = False
) -> dict[str, Any]:
    """Newest first, keyset-paged by id (``before`` = the previous page's ``next_before``)."""
    query = select(feed_items).where(feed_items.c.user_id == user_id)
    if before is not None:
        query = query.where(feed_items.c.id < before)
    if unread_only:
        query = query.where(feed_items.c.read_at.is_(None))
    query = query.order_by(feed_items.c.id.desc()).limit(limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        unread = (
            await conn.execute(
                select(func.count())
                .select_from(feed_items)
                .where(feed_items.c.user_id == user_id, feed_items.c.read_at.is_(None))
            )
        ).scalar_one()
    page = rows[:limit]
    return {
        "user_id": user_id,
        "unread_count": unread,
        "items": [_item(row) for row in page],
        "next_before": page[-1].id if len(rows) > limit else None,
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _item(row) -> dict[str, Any]:
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
        "read": row.read_at is not None,
        "read_at": iso(row.read_at),
    }


async def mark_read(engine: AsyncEngine, user_id: str, ids: Sequence[int] | None = None) -> int:
    """Mark the given items (or, with ``ids=None``, all) of the user read; returns how many changed."""
    query = update(feed_items).where(feed_items.c.user_id == user_id, feed_items.c.read_at.is_(None))
    if ids is not None:
        query = query.where(feed_items.c.id.in_(list(ids)))
    async with engine.begin() as conn:
        return (await conn.execute(query.values(read_at=func.now()))).rowcount


async def prune_feed(engine: AsyncEngine, days: int) -> int:
    """Delete read items read more than ``days`` ago; unread ones are kept whatever their age."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text("DELETE FROM feed_items WHERE read_at IS NOT NULL AND read_at < now() - make_interval(days => :d)"),
            {"d": days},
        )
        return result.rowcount
