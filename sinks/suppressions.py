"""Email addresses a relay refused permanently: a 5xx answer to RCPT (unknown mailbox, domain that does not exist)
suppresses the address — no more mail is sent to it, each further delivery is dead at once with the reason, and the
relay's reputation is spared retries it already refused. A 4xx (greylisting, a full mailbox) is retried on the
channel's schedule. The key is the address itself (lower case): a user who sets another address is mailed again;
``crownstream email suppressions lift ADDRESS`` lifts one by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

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
