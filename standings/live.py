"""Worker-local broadcast of "this stage's standings changed", from the standings agent to live pages.

The agent calls ``publish(tournament_id, stage_id)`` after it applied an event to a stage; every open
leaderboard stream of that stage wakes up and re-reads the standings. A subscriber only learns *that*
something changed (a version number), never *what*: it reads the current state itself, so a slow viewer
that misses ten changes in a burst sends one update with the latest standings instead of ten stale ones,
and a publisher never blocks on, or buffers for, a viewer.

No I/O and no Faust here: the hub is plain asyncio, unit-tested on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from crownstream.standings.errors import StreamClosed as StreamClosed


class Subscription:
    def __init__(self, key: tuple[str, str], version: int) -> None:
        self.key = key
        self.seen = version
        self._latest = version
        self._wakeup = asyncio.Event()
        self._closed = False

    def _notify(self, version: int) -> None:
        self._latest = version
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def changed(self, timeout: float | None = None) -> int | None:
        """Wait for a version newer than the last one returned; None on timeout.

        Raises StreamClosed once the hub closed this subscription (after any change already pending)."""
        if self._latest == self.seen and not self._closed:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                return None
        self._wakeup.clear()
        if self._latest != self.seen:
            self.seen = self._latest
            return self.seen
        raise StreamClosed(f"live updates of {self.key[0]}/{self.key[1]} closed on this worker")


class Hub:
    """Versions per (tournament, stage) and the subscriptions waiting on them."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], int] = {}
        self._subscribers: dict[tuple[str, str], set[Subscription]] = {}

    def version(self, tournament_id: str, stage_id: str) -> int:
        return self._versions.get((tournament_id, stage_id), 0)

    def publish(self, tournament_id: str, stage_id: str) -> int:
        key = (tournament_id, stage_id)
        version = self._versions.get(key, 0) + 1
        self._versions[key] = version
        for sub in self._subscribers.get(key, ()):
            sub._notify(version)
        return version

    def subscribers(self, tournament_id: str | None = None, stage_id: str | None = None) -> int:
        if tournament_id is None:
            return sum(len(s) for s in self._subscribers.values())
        return len(self._subscribers.get((tournament_id, stage_id or ""), ()))

    @asynccontextmanager
    async def subscribe(self, tournament_id: str, stage_id: str) -> AsyncIterator[Subscription]:
        key = (tournament_id, stage_id)
        sub = Subscription(key, self._versions.get(key, 0))
        self._subscribers.setdefault(key, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subscribers.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[key]

    def close_all(self) -> int:
        """End every subscription: their viewers reconnect and are routed to whichever worker owns the stage
        now. Returns how many were closed."""
        closed = 0
        for subs in self._subscribers.values():
            for sub in subs:
                sub._close()
                closed += 1
        return closed


HUB = Hub()


def publish(tournament_id: str, stage_id: str) -> None:
    """Called by the standings agent after it applied an event to a stage. Never blocks."""
    HUB.publish(tournament_id, stage_id)
