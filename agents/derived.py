"""In-memory state derived from the tables (a stage's leaderboard, a group's table), kept per stage.

The agent processes micro-batches whose table writes reach the stores only when the batch ends
(crownstream/engine/write_cache.py). A copy built by the agent, inside a batch, reads the tables as the batch sees
them, its own writes included: that copy is the one the agent updates and every reader uses. A view (an HTTP
request) that finds no such copy builds one from the stores, which lack the writes of a batch in progress; kept in
the agent's place, the agent would go on updating a copy that misses them. So a view's copy is kept apart, for
views only, and dropped as soon as the agent builds its own.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from crownstream.engine import batch_active

V = TypeVar("V")


class DerivedViews(Generic[V]):
    def __init__(self) -> None:
        self._agent: dict[str, V] = {}
        self._views: dict[str, V] = {}

    def get(self, key: str) -> V | None:
        found = self._agent.get(key)
        if found is None and not batch_active():
            found = self._views.get(key)
        return found

    def __setitem__(self, key: str, value: V) -> None:
        if batch_active():
            self._agent[key] = value
            self._views.pop(key, None)
        else:
            self._views[key] = value

    def pop(self, key: str, default: V | None = None) -> V | None:
        view = self._views.pop(key, None)
        return self._agent.pop(key, view if view is not None else default)

    def clear(self) -> None:
        self._agent.clear()
        self._views.clear()

    def __len__(self) -> int:
        return len(self._agent.keys() | self._views.keys())
