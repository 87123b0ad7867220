"""Channel switches: an operator pauses a whole channel (email, Discord, webhooks, in-app) at runtime — the relay
is being moved, a provider is in trouble — and resumes it. While paused nothing of the channel is sent: its
deliveries are held in the ledger, not dropped (they stay pending and due), and when it is resumed they go out
oldest first. Every worker's dispatcher reads the switch at its poll interval, so a pause takes effect within
``CROWNSTREAM_SINK_POLL_INTERVAL_S`` (sends already in flight finish)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from crownstream.schemas.deliveries import CHANNELS
from crownstream.sinks.errors import UnknownChannel
from crownstream.sinks.tables import channel_switches as t


@dataclass(frozen=True, slots=True)
class Switch:
    channel: str
    paused: bool
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None


def _check(channel: str) -> None:
    if channel not in CHANNELS:
        raise UnknownChannel(f"unknown channel {channel!r}; the channels are {', '.join(CHANNELS)}")


async def set_paused(engine: AsyncEngine, channel: str, paused: bool, by: str, reason: str | None = None) -> Switch:
    _check(channel)
    values = {"channel": channel, "paused": paused, "reason": reason, "changed_by": by[:128]}
    statement = (
        insert(t)
        .values(**values, changed_at=func.now())
        .on_conflict_do_update(
            index_elements=[t.c.channel],
            set_={"paused": paused, "reason": reason, "changed_by": by[:128], "changed_at": func.now()},
        )
        .returning(t.c.channel, t.c.paused, t.c.reason, t.c.changed_by, t.c.changed_at)
    )
    async with engine.begin() as conn:
        row = (await conn.execute(statement)).one()
    return Switch(*row)


async def switches(engine: AsyncEngine) -> dict[str, Switch]:
    """Every channel's switch (running unless a row says paused)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.c.channel, t.c.paused, t.c.reason, t.c.changed_by, t.c.changed_at))).all()
    found = {row.channel: Switch(*row) for row in rows}
    return {channel: found.get(channel, Switch(channel, False)) for channel in CHANNELS}


async def is_paused(engine: AsyncEngine, channel: str) -> bool:
    async with engine.connect() as conn:
        paused = (await conn.execute(select(t.c.paused).where(t.c.channel == channel))).scalar_one_or_none()
    return bool(paused)
