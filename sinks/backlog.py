"""The delivery backlog as gauges: how much waits per channel and state, the oldest waiting delivery, and the
disabled webhook endpoints — numbers no delivery event updates by itself, so a worker reads them from the ledger
every ``CROWNSTREAM_BACKLOG_REFRESH_S``. The alert rules in deploy/prometheus/ watch them."""

from __future__ import annotations

import asyncio
import logging

from crownstream.metrics import DELIVERY_BACKLOG, DELIVERY_OLDEST_PENDING, WEBHOOK_ENDPOINTS_DISABLED
from crownstream.schemas.deliveries import CHANNELS
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.webhook_endpoints import count_disabled

log = logging.getLogger(__name__)
STATES = ("pending", "failed", "sending")


async def refresh(ledger: Ledger) -> None:
    rows = await ledger.backlog()
    counts = {(channel, state): count for channel, state, count, _ in rows}
    oldest: dict[str, float] = {}
    for channel, _, _, age in rows:
        oldest[channel] = max(oldest.get(channel, 0.0), age)
    for channel in CHANNELS:  # every series exists from the start: an alert on a missing series never fires
        for state in STATES:
            DELIVERY_BACKLOG.labels(channel, state).set(counts.get((channel, state), 0))
        DELIVERY_OLDEST_PENDING.labels(channel).set(oldest.get(channel, 0.0))
    WEBHOOK_ENDPOINTS_DISABLED.set(await count_disabled(ledger.engine))


async def keep_refreshed(ledger: Ledger, interval_s: float) -> None:
    """Until cancelled. A failed read (PostgreSQL away) leaves the last numbers and is tried again next time."""
    while True:
        try:
            await refresh(ledger)
        except Exception as exc:
            log.warning("reading the delivery backlog failed", extra={"error": repr(exc)[:300]})
        await asyncio.sleep(interval_s)
