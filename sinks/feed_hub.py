"""Worker-local fan-out of "this user's feed changed" to the user's open live streams (pure asyncio, no I/O).

The worker's one PostgreSQL listener (sinks/feed_live.py) calls ``wake(user_id)`` for every announcement; each of
that user's streams wakes and reads what is new itself (items after its cursor, the counts). A stream learns only
*that* something changed: ten announcements in a burst wake a slow stream once, and the listener never blocks on,
or buffers for, a stream. Users without an open stream here cost a dictionary miss. ``wake_all`` is for the
listener's (re)connection: announcements made while it was not listening are lost, so every stream re-reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum


class Wake(Enum):
    CHANGED = "changed"  # something of the user's feed changed (or may have): read it again
    TIMEOUT = "timeout"  # nothing within the timeout: time for the caller's own checks
    CLOSED = "closed"  # the hub closed the stream (the worker is stopping): end it


class Subscription:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self._pending = asyncio.Event()
        self._closed = False

    def _wake(self) -> None:
        self._pending.set()

    def _close(self) -> None:
        self._closed = True
        self._pending.set()

    async def wait(self, timeout: float | None = None) -> Wake:
        """Until woken (CHANGED; a wake before the call counts), closed (CLOSED) or ``timeout`` (TIMEOUT)."""
        if not self._pending.is_set():
            try:
                await asyncio.wait_for(self._pending.wait(), timeout)
            except TimeoutError:
                return Wake.TIMEOUT
        self._pending.clear()
        return Wake.CLOSED if self._closed else Wake.CHANGED


class FeedHub:
    def __init__(self) -> None:
        self._streams: dict[str, set[Subscription]] = {}

    def streams(self, user_id: str | None = None) -> int:
        if user_id is None:
            return sum(len(s) for s in self._streams.values())
        return len(self._streams.get(user_id, ()))

    def refusal(self, user_id: str, max_per_user: int, max_total: int) -> str | None:
        """Why one more stream of ``user_id`` would be one too many here (None: it may open)."""
        if self.streams(user_id) >= max_per_user:
            return (
                f"this user already has {max_per_user} live feed streams open on this worker "
                "(CROWNSTREAM_FEED_STREAM_MAX_PER_USER); close one (another tab or device) or retry later"
            )
        if self.streams() >= max_total:
            return (
                f"this worker serves its maximum of {max_total} live feed streams "
                "(CROWNSTREAM_FEED_STREAM_MAX_PER_WORKER); retry later, another worker may take it"
            )
        return None

    @contextmanager
    def subscribe(self, user_id: str) -> Iterator[Subscription]:
        sub = Subscription(user_id)
        self._streams.setdefault(user_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._streams.get(user_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._streams[user_id]

    def wake(self, user_id: str) -> int:
        """Wake the streams of ``user_id``; returns how many."""
        subs = self._streams.get(user_id, ())
        for sub in subs:
            sub._wake()
        return len(subs)

    def wake_all(self) -> int:
        woken = 0
        for user_id in list(self._streams):
            woken += self.wake(user_id)
        return woken

    def close_all(self) -> int:
        """End every stream (the worker is stopping); its clients reconnect, to another worker, and resume."""
        closed = 0
        for subs in self._streams.values():
            for sub in subs:
                sub._close()
                closed += 1
        return closed


HUB = FeedHub()
