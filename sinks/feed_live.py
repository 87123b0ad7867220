"""The worker's one PostgreSQL listener for the in-app feed's live streams.

Any worker's sink may write a user's feed item, and any worker may serve that user's stream, so the push comes
from PostgreSQL: every insert and state change of a feed item announces its user on ``CHANNEL`` at commit (the
triggers of migration 0008), and each worker keeps one connection LISTENing there, however many streams it serves,
handing every announcement to the hub (sinks/feed_hub.py), which wakes that user's streams on this worker.

Announcements made while the connection is down are lost (PostgreSQL queues them only for listening sessions), so
after every (re)connection the listener wakes all streams and each re-reads everything after its cursor: a dropped
connection delays a push, it never loses one. The connection is checked every ``health_s``: a peer that vanished
without closing the socket would otherwise leave the listener deaf.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # (asyncpg ships no type information)
from sqlalchemy.engine import make_url

from crownstream.sinks.feed_hub import HUB, FeedHub

log = logging.getLogger(__name__)

CHANNEL = "crownstream_feed"  # the triggers' pg_notify channel (migration 0008)
#: How the listening connection shows in pg_stat_activity (one per worker).
APPLICATION_NAME = "crownstream-feed-listener"


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from the SQLAlchemy URL of the settings (``postgresql+asyncpg://…``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _where(database_url: str) -> str:
    url = make_url(database_url)
    return f"{url.host}:{url.port}/{url.database}"  # for logs: never the password


class FeedListener:
    def __init__(self, hub: FeedHub = HUB) -> None:
        self.hub = hub
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self, database_url: str, health_s: float) -> None:
        """Start listening, once per process (the first live stream does it); idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run(database_url, health_s))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self.hub.wake(payload)

    async def _run(self, database_url: str, health_s: float) -> None:
        delay = 0.2
        while True:
            conn = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    asyncpg_dsn(database_url), timeout=10, server_settings={"application_name": APPLICATION_NAME}
                )
                conn.add_termination_listener(lambda _conn, ended=lost: ended.set())
                await conn.add_listener(CHANNEL, self._notified)
                self.connected.set()
                # Whatever was announced before this LISTEN took effect is read by each stream now.
                woken = self.hub.wake_all()
                log.info("feed listener listening", extra={"database": _where(database_url), "streams_woken": woken})
                delay = 0.2
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), health_s)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=max(1.0, health_s))
                raise ConnectionError("the listening connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                self.reconnects += 1
                log.warning(
                    "feed listener lost its PostgreSQL connection; live feed pushes wait until it is back",
                    extra={"database": _where(database_url), "error": exc.__class__.__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    try:
                        await asyncio.wait_for(conn.close(), 2)
                    except Exception:
                        conn.terminate()


LISTENER = FeedListener()
