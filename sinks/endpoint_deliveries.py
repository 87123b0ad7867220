"""What an endpoint's owner can see and do about its deliveries (the self-service API, web/webhooks.py): the recent
deliveries with every attempt (time, status, latency, response code, the receiver's answer cut short), resending
one, recovering every failed or dead one since a time. Resent and recovered deliveries get a fresh retry schedule
and keep their ``webhook-id`` (the dedup key), so a receiver that already had one can tell."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_RECENT = text("""
SELECT dedup_key, notification_type, state, attempt_count, attempts, last_error, created_at, sent_at,
       next_attempt_at
  FROM deliveries
 WHERE channel = 'webhook' AND target = :endpoint AND (CAST(:state AS text) IS NULL OR state = :state)
 ORDER BY created_at DESC, dedup_key
 LIMIT :limit
""")

# A fresh start: due now, a whole new schedule. Not a row being sent right now (its outcome is on its way).
_AGAIN = """
UPDATE deliveries SET state = 'pending', attempt_count = 0, next_attempt_at = now(), last_error = NULL,
       lease_until = NULL, updated_at = now()
 WHERE channel = 'webhook' AND target = :endpoint AND state <> 'sending'
"""


async def recent(engine: AsyncEngine, endpoint_id: str, limit: int = 50, state: str | None = None) -> list[dict]:
    async with engine.connect() as conn:
        rows = (await conn.execute(_RECENT, {"endpoint": endpoint_id, "state": state, "limit": limit})).all()
    return [_public(row) for row in rows]


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row.dedup_key,
        "notification_type": row.notification_type,
        "state": "retrying" if row.state == "failed" else row.state,
        "attempt_count": row.attempt_count,
        "created_at": row.created_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.state in ("pending", "failed") else None,
        "last_error": row.last_error,
        # The worker's name is ours, not the owner's business.
        "attempts": [{k: v for k, v in attempt.items() if k != "worker"} for attempt in row.attempts],
    }


async def resend(engine: AsyncEngine, endpoint_id: str, dedup_key: str) -> bool:
    """Send one delivery again (whatever its state but in flight); False if the endpoint has no such delivery."""
    async with engine.begin() as conn:
        result = await conn.execute(text(_AGAIN + " AND dedup_key = :key"), {"endpoint": endpoint_id, "key": dedup_key})
    return result.rowcount == 1


async def recover(engine: AsyncEngine, endpoint_id: str, since: datetime) -> int:
    """Send again every delivery to the endpoint that failed for good or is still retrying, created since ``since``.
    Returns how many."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(_AGAIN + " AND state IN ('dead', 'failed') AND created_at >= :since"),
            {"endpoint": endpoint_id, "since": since},
        )
    return result.rowcount
