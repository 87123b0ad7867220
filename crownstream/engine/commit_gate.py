"""A transaction never commits half of an event's effects.

Under exactly_once an event's outputs and its table writes go into its input partition's transaction, and
the commit of that transaction carries the offsets acknowledged so far. Faust commits from a task of its
own (the commit timer, a rebalance), at any await of an agent: between the ``send_batch`` of a tournament's
final placements and the table write that marks the stage finalized, say. The outputs then commit in one
transaction and the marker in the next; a crash before that one commits leaves the outputs on the topic
and the stage unmarked, so the new owner — re-reading the event, whose offset did not commit either —
emits them again (seen as duplicated ``standings.finalized`` records after a kill -9 on a loaded machine).

Reprocessing an event is harmless only if its effects are all or nothing. So per transactional id, events
are processed *inside* the gate (many at once: several agents may read one partition's topics) and a commit
waits until none is inside, while new events wait for the commit: committers go first, so a steady stream
cannot starve them. A commit reads the offsets to commit only once it holds the gate (``_Consumer.force_commit``)
and an event is acknowledged before it leaves the gate, so a transaction's offsets cover every event whose effects
it holds. Reading them before (Faust's order) committed a batch's outputs with the offsets from before it: re-read
after a crash, its events emitted them again (delivery requests committed twice upstream, #15, UPSTREAM.md F24).

Why not a reader-writer lock library (aiorwlock): those tie a hold to the task that took it, and an
event's hold is released by an async generator, whose clean-up runs in another task when the agent raised
(asyncio's async-generator finalizer) — the release then fails and the partition never commits again.
Leaving the gate here is a plain counter decrement, valid from any task, and an agent that raised has its
holds released before Faust's error handling commits (``release_task``, from the consumer's ``on_task_error``).

UPSTREAM.md row F3. Agents reach it through ``crownstream.engine.gated_events``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import faust

from crownstream.engine.state import state_of


def input_transactional_id(app: Any, tp: Any) -> str:
    """Faust's transactional id of an input partition: ``{app id}-{topic group}-{partition}``."""
    return f"{app.conf.id}-{app.assignor.group_for_topic(tp.topic)}-{tp.partition}"


class PartitionGate:
    """Events inside at once, or one commit: never both."""

    def __init__(self) -> None:
        self.inside = 0
        self.committers = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._no_committer = asyncio.Event()
        self._no_committer.set()
        self._commit = asyncio.Lock()

    async def enter(self) -> None:
        while self.committers:
            await self._no_committer.wait()
        self.inside += 1
        self._idle.clear()

    def leave(self) -> None:
        self.inside -= 1
        if not self.inside:
            self._idle.set()

    @asynccontextmanager
    async def committing(self) -> AsyncIterator[None]:
        self.committers += 1
        self._no_committer.clear()
        try:
            async with self._commit:
                await self._idle.wait()
                yield
        finally:
            self.committers -= 1
            if not self.committers:
                self._no_committer.set()


class _Hold:
    """One event inside one gate; released once, by whichever comes first: the agent asking for the next
    event, or the agent's crash (``release_task``)."""

    __slots__ = ("gate", "released", "task")

    def __init__(self, gate: PartitionGate, task: asyncio.Task[Any] | None) -> None:
        self.gate, self.task, self.released = gate, task, False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate.leave()


class CommitGate:
    def __init__(self) -> None:
        self._gates: dict[str, PartitionGate] = {}
        self._holds: dict[asyncio.Task[Any] | None, set[_Hold]] = {}

    async def hold(self, transactional_id: str) -> _Hold:
        gate = self.gate(transactional_id)
        await gate.enter()
        hold = _Hold(gate, asyncio.current_task())
        self._holds.setdefault(hold.task, set()).add(hold)
        return hold

    def release(self, hold: _Hold) -> None:
        hold.release()
        held = self._holds.get(hold.task)
        if held is not None:
            held.discard(hold)
            if not held:
                del self._holds[hold.task]

    def release_task(self, task: asyncio.Task[Any] | None) -> int:
        """Release what ``task`` holds: an agent that raised mid-event leaves its generator suspended (its
        traceback keeps it alive), and Faust then commits from that same task (``on_task_error``) — which
        would otherwise wait for the task itself. Returns how many holds were released."""
        held = self._holds.pop(task, set())
        for hold in held:
            hold.release()
        return len(held)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Per transactional id, the events inside and the commits waiting (``/ops/assignment``): a gate that
        stays with events inside and a committer waiting is a stalled partition."""
        return {
            tid: {"inside": gate.inside, "committers": gate.committers} for tid, gate in sorted(self._gates.items())
        }

    def gate(self, transactional_id: str) -> PartitionGate:
        gate = self._gates.get(transactional_id)
        if gate is None:
            gate = self._gates[transactional_id] = PartitionGate()
        return gate

    @asynccontextmanager
    async def committing(self, transactional_ids: Iterable[str]) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for transactional_id in sorted(set(transactional_ids)):  # one order everywhere: no deadlock
                await stack.enter_async_context(self.gate(transactional_id).committing())
            yield


def gate_for(app: Any) -> CommitGate:
    """The worker's one CommitGate (shared by its agents and its transaction manager)."""
    return state_of(app).commit_gate


async def gated_events(app: Any, stream: faust.StreamT[Any]) -> AsyncIterator[faust.EventT[Any]]:
    """``stream.events()``, each event handed out inside its partition's gate, left when the agent asks for
    the next one — the whole of the event's handling, sends and table writes."""
    gates = gate_for(app)
    async for event in stream.events():
        hold = await gates.hold(input_transactional_id(app, event.message.tp))
        try:
            yield event
        finally:
            gates.release(hold)
