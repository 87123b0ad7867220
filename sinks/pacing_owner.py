"""Which worker sends to a rate-limited destination: the one holding its PostgreSQL advisory lock.

Pacing (sinks/rate_limit.py) is kept in each worker's memory; were every worker to send to a limited endpoint, each
pacing on its own, W workers would let W x its rate through. So one worker at a time delivers to it: the one that
holds a session-level advisory lock named after it, taken on a connection of its own that it keeps open. The others
leave the endpoint out of their claims. Production systems do the same in one of two ways — a shared bucket (a Redis
GCRA) or one owner per key (a partition); this is the second, with PostgreSQL as the arbiter, and no schema.

A worker that dies or loses its connection loses its locks with it (PostgreSQL releases them when the session ends):
another worker takes the endpoint at its next poll. Every paced endpoint may end up with the same worker (the first
to ask); their traffic is bounded by the sum of their rates, so that is little. Between a PostgreSQL restart and the
next poll interval two workers can briefly both send to one endpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# The advisory locks' namespace (their first int4 key), so they cannot meet another user of advisory locks; the second
# key is hashtext(target). Two targets with the same hash share a lock: they are then paced by the same worker.
LOCK_NAMESPACE = 0x63_73_70_63  # "cspc"

_TAKE = text(
    "SELECT t, pg_try_advisory_lock(:ns, hashtext(t)) FROM unnest(CAST(:targets AS text[])) AS t",
)
_RELEASE = text(
    "SELECT pg_advisory_unlock(:ns, hashtext(t)) FROM unnest(CAST(:targets AS text[])) AS t",
)


class PaceOwnership:
    """The rate-limited destinations this worker may send to. Checked at most once per ``interval_s``."""

    def __init__(self, engine: AsyncEngine, interval_s: float) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._conn: AsyncConnection | None = None
        self._held: set[str] = set()
        self._checked = float("-inf")

    def holding(self) -> bool:
        return bool(self._held)

    async def owned(self, targets: Collection[str]) -> set[str]:
        """Of ``targets`` (the destinations limited now), those this worker delivers to: it tries for the ones it
        does not hold yet, and lets go of those no longer limited."""
        now = time.monotonic()
        if now - self._checked >= self.interval_s:
            self._checked = now
            try:
                await self._sync(set(targets))
            except Exception as exc:  # PostgreSQL away: the locks may have gone with the session
                log.warning("pacing locks lost; rate-limited endpoints wait", extra={"error": repr(exc)[:300]})
                await self.close()
        return self._held.intersection(targets)

    async def _sync(self, targets: set[str]) -> None:
        if self._conn is None:
            # Its own connection, out of the pool's rotation and outside any transaction: the locks are the
            # session's, held for as long as it lives.
            conn = await self.engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        release = sorted(self._held - targets)
        if release:
            await self._conn.execute(_RELEASE, {"ns": LOCK_NAMESPACE, "targets": release})
            self._held -= set(release)
        wanted = sorted(targets - self._held)
        if wanted:
            rows = (await self._conn.execute(_TAKE, {"ns": LOCK_NAMESPACE, "targets": wanted})).all()
            self._held |= {target for target, taken in rows if taken}
        elif self._held:
            await self._conn.execute(text("SELECT 1"))  # still connected, so still holding them

    async def close(self) -> None:
        """Let go of every lock. Closing the connection is not enough: it goes back to the pool, its session (and
        so its locks) alive; the locks are released, and a connection that cannot say so is discarded."""
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock_all()"))
            await conn.close()
        except Exception as exc:  # broken: discarded, its session ends and its locks with it
            log.debug("releasing the pacing locks failed; dropping the connection", extra={"error": repr(exc)[:300]})
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:
                pass  # nothing more to release
