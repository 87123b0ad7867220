"""A transaction never commits half of an event's effects.

Under exactly_once an event's outputs and its table writes go into its input partition's transaction, and
the commit of that transaction carries the offsets acknowledged so far. Faust commits from a task of its
own (the commit timer, a rebalance), at any await of an agent: between the ``send_batch`` of a tournament's
final placements and the table write that marks the stage finalized, say. The outputs then commit in one
transaction and the marker in the next; a crash before that one commits leaves the outputs on the topic
and the stage unmarked, so the new owner — re-reading the event, whose offset did not commit either —
emits them again (seen as duplicated ``standings.finalized`` records after a kill -9 on a loaded machine).

Reprocessing an event is harmless only if its effects are all or nothing. So each event is processed under
the *read* side of its transactional id's lock (many events of one partition's agents may run at once), and
the commit takes the *write* side of every transactional id it commits: it waits for the events in progress
to finish, and new ones wait for it (aiorwlock prefers writers, so a steady stream cannot starve it). An
event that finished but is not acknowledged yet has all its effects in the transaction and its offset in
the next one: re-read after a crash, it finds its own effects in the tables and does nothing twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import faust
from aiorwlock import RWLock


def input_transactional_id(app: Any, tp: Any) -> str:
    """Faust's transactional id of an input partition: ``{app id}-{topic group}-{partition}``."""
    return f"{app.conf.id}-{app.assignor.group_for_topic(tp.topic)}-{tp.partition}"


class CommitGate:
    def __init__(self) -> None:
        self._locks: dict[str, RWLock] = {}

    def _lock(self, transactional_id: str) -> RWLock:
        lock = self._locks.get(transactional_id)
        if lock is None:
            lock = self._locks[transactional_id] = RWLock()
        return lock

    @asynccontextmanager
    async def processing(self, transactional_id: str) -> AsyncIterator[None]:
        async with self._lock(transactional_id).reader_lock:
            yield

    @asynccontextmanager
    async def committing(self, transactional_ids: Iterable[str]) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for transactional_id in sorted(set(transactional_ids)):  # one order everywhere: no deadlock
                await stack.enter_async_context(self._lock(transactional_id).writer_lock)
            yield


def gate_for(app: Any) -> CommitGate:
    """The worker's one CommitGate (shared by its agents and its transaction manager)."""
    gate = getattr(app, "_crownstream_commit_gate", None)
    if gate is None:
        gate = app._crownstream_commit_gate = CommitGate()
    return gate


async def gated_events(app: Any, stream: faust.StreamT) -> AsyncIterator[faust.EventT]:
    """``stream.events()``, each event handed out under its partition's processing lock, which is released
    when the agent asks for the next one — the whole of the event's handling, sends and table writes."""
    gate = gate_for(app)
    async for event in stream.events():
        async with gate.processing(input_transactional_id(app, event.message.tp)):
            yield event
