"""Destinations that refused for good, not tried again: email addresses and Discord webhooks.

Email addresses a relay refused permanently: a 5xx answer to RCPT (unknown mailbox, domain that does not exist)
suppresses the address — no more mail is sent to it, each further delivery is dead at once with the reason, and the
relay's reputation is spared retries it already refused. A 4xx (greylisting, a full mailbox) is retried on the
channel's schedule. The key is the address itself (lower case): a user who sets another address is mailed again;
``crownstream email suppressions lift ADDRESS`` lifts one by hand.

Discord webhooks Discord answered 404 for (deleted): kept by the SHA-256 of their URL (which holds the webhook's
token), not called again; the user sets a new webhook URL in their preferences."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from crownstream.sinks.tables import discord_gone_webhooks as gone
from crownstream.sinks.tables import email_suppressions as t


@dataclass(frozen=True, slots=True)
class Suppression:
    address: str
    code: int
    reason: str
    suppressed_at: datetime


async def suppression_of(engine: AsyncEngine, address: str) -> Suppression | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(t).where(t.c.address == address.lower()))).first()
    return Suppression(*row) if row is not None else None


async def suppress(engine: AsyncEngine, address: str, code: int, reason: str) -> None:
    statement = insert(t).values(address=address.lower()[:320], code=code, reason=reason[:2000])
    async with engine.begin() as conn:
        await conn.execute(statement.on_conflict_do_nothing(index_elements=[t.c.address]))


async def lift(engine: AsyncEngine, address: str) -> bool:
    async with engine.begin() as conn:
        return (await conn.execute(delete(t).where(t.c.address == address.lower()))).rowcount == 1


async def suppressions(engine: AsyncEngine, limit: int = 1000) -> list[Suppression]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t).order_by(t.c.suppressed_at.desc()).limit(limit))).all()
    return [Suppression(*row) for row in rows]


def url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


async def discord_gone(engine: AsyncEngine, url_sha256: str) -> str | None:
    """Why the Discord webhook with this URL digest is known gone, or None."""
    async with engine.connect() as conn:
        return (await conn.execute(select(gone.c.reason).where(gone.c.url_sha256 == url_sha256))).scalar_one_or_none()


async def mark_discord_gone(engine: AsyncEngine, url_sha256: str, user_id: str, reason: str) -> bool:
    """True for the call that recorded it (its owner is told once)."""
    statement = (
        insert(gone)
        .values(url_sha256=url_sha256, user_id=user_id[:128], reason=reason[:2000])
        .on_conflict_do_nothing(index_elements=[gone.c.url_sha256])
        .returning(gone.c.url_sha256)
    )
    async with engine.begin() as conn:
        return (await conn.execute(statement)).first() is not None
