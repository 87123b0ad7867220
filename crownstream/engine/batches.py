"""Micro-batches: an agent's events taken a partition's run at a time, processed under one hold of the commit gate,
with one write cache in front of the tables.

Faust hands an agent one event per iteration, and everything around an event is paid per event: the commit gate
(F3), a changelog record and a RocksDB put per table assignment. Kafka Streams and Quix Streams process what the
consumer fetched a partition at a time instead. ``gated_batches`` does the same inside Faust's agent model:

- the first event of a batch comes from ``stream.events()`` (it waits, as any agent does, and Faust tracks and
  acks it when the agent asks for the next one); then, without ever waiting, the events already delivered to the
  stream's channel are taken while they are of the same input partition, up to ``max_events``;
- the batch is processed under one hold of its partition's gate, so no commit splits it: its effects, its table
  writes (flushed at its end, ``write_cache``) and its offsets commit in one transaction, or none of it does;
- the events taken from the channel are tracked and acknowledged as Faust's own iterator does (a message of a
  generation that ended, or while flow control is suspended for a rebalance, is acknowledged unprocessed, as
  Faust does: the new generation re-reads from the committed offset), after the batch is processed;
- every event of a batch is acknowledged right after the batch, the first one (from ``stream.events()``) too, with
  Faust's own acks off as ``Stream.take`` does. Faust acknowledges an event it handed out only when its iterator is
  asked for the next one, and a batch that starts with an event already taken from the channel (the previous batch
  met it: another partition's) does not ask: while a backlog of several partitions interleaves in the channel, a
  batch's first event stayed unacknowledged batch after batch. Faust commits a partition's offsets only up to the
  first unacknowledged one, so the outputs of every later event of that partition committed in transactions whose
  offsets did not cover them, and the next owner after a rebalance processed them all again: the delivery requests
  committed twice upstream in the operations scenario's catch-up after the broker restart (#15).
A batch never holds the gates of two partitions: a committer takes gates in one order, and a batch that held one
while waiting for another could deadlock with it. An event of another partition ends the batch and starts the next.

The agent sees a ``Batch``: its events, and ``processing(event)``, which makes ``event`` the current event (its
sends join its input partition's transaction; Faust and the handlers read it with ``faust.current_event()``) and
opens its savepoint in the write cache.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from weakref import ref

import faust
from faust.streams import _current_event
from faust.types import TP

from crownstream.engine.commit_gate import gate_for, input_transactional_id
from crownstream.engine.errors import KAFKA_FAILURES
from crownstream.engine.state import state_of
from crownstream.engine.state_repair import repair_for
from crownstream.engine.write_cache import ACTIVE, ChangelogRecord, WriteCache

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Events of one input partition, in offset order, processed as one unit."""

    tp: Any
    events: list[faust.EventT[Any]]
    cache: WriteCache = field(default_factory=WriteCache)
    # Run once the batch's writes are in the stores (``after_batch``), one per key, in the order first asked for.
    after: dict[Hashable, Callable[[], None]] = field(default_factory=dict)
    # Why the batch cannot take effect (``lose``): Kafka failed under it; None while it can.
    lost: BaseException | None = None

    def lose(self, cause: BaseException) -> None:
        """Kafka failed under this batch (its producer fenced, a send refused): none of it takes effect here, and
        its partition is read again from the committed offset after a rebalance (``_abandon``). For the agent's
        loop body, which sees the failure; ``gated_batches`` sees only the ones of its own flush."""
        if self.lost is None:
            self.lost = cause

    @contextmanager
    def processing(self, event: faust.EventT[Any]) -> Iterator[EventOutcome]:
        """``event`` is being processed: it is the current event, and its table writes form a savepoint that
        joins the batch unless ``outcome.failed()`` was called (its record went to the dead-letter topic) or the
        block raised."""
        token = _current_event.set(ref(event))
        outcome = EventOutcome()
        try:
            yield outcome
        except BaseException:
            self.cache.end_event(took_effect=False)
            raise
        else:
            self.cache.end_event(took_effect=not outcome.did_fail)
        finally:
            _current_event.reset(token)

    async def flush(self, app: Any) -> int:
        """Write the batch's table writes through (once per key), with its last event current; under exactly_once
        their changelog records go straight into the partition's transaction, appended per changelog partition.
        Returns how many keys were written."""
        token = _current_event.set(ref(self.events[-1]))
        try:
            if not app.in_transaction:
                return self.cache.flush()
            records: list[ChangelogRecord] = []
            written = self.cache.flush(changelog=records)
            await send_changelog(app, records)
            return written
        finally:
            _current_event.reset(token)


async def send_changelog(app: Any, records: list[ChangelogRecord]) -> None:
    """Changelog records in the current event's input-partition transaction, one run per changelog partition. The
    changelog offset of each partition's last record is held until that transaction commits, as Faust holds the
    offset of each of its own changelog sends (``TableManager.persist_offset_on_commit``)."""
    runs: dict[tuple[str, int], list[ChangelogRecord]] = {}
    for record in records:
        runs.setdefault((record.topic, record.partition), []).append(record)
    for (topic, partition), run in runs.items():
        last = await app.consumer.transactions.send_batch(topic, partition, [(r.key, r.value) for r in run])
        if last is not None:
            last.add_done_callback(_persist_on_commit(app, run[-1].table, TP(topic, partition)))


def _persist_on_commit(app: Any, table: Any, tp: TP) -> Any:
    def persist(delivered: Any) -> None:
        if delivered.cancelled() or delivered.exception() is not None:
            return  # the transaction fails; its partition's state is rebuilt from the changelog (F15)
        app.tables.persist_offset_on_commit(table.data, tp, delivered.result().offset)

    return persist


class EventOutcome:
    __slots__ = ("did_fail",)

    def __init__(self) -> None:
        self.did_fail = False

    def failed(self) -> None:
        """The event did not take effect: drop what it wrote."""
        self.did_fail = True


class _Channel:
    """What ``gated_batches`` takes from a stream's channel without waiting (Faust's own iterator, inlined)."""

    def __init__(self, app: Any, stream: faust.StreamT[Any]) -> None:
        self.app, self.stream = app, stream
        channel = stream.channel
        self.queue = getattr(channel, "queue", None)  # a plain async iterable has none: batches of one

    def ready(self) -> bool:
        return self.queue is not None and not self.queue.empty()

    def take(self) -> tuple[faust.EventT[Any] | None, faust.EventT[Any] | None]:
        """The next delivered event: (event to process, None) or (None, event to acknowledge unprocessed)."""
        event = self.queue.get_nowait()  # type: ignore[union-attr]  # ready() said there is one
        message = event.message
        app = self.app
        if not app.flow_control.is_active() or message.generation_id != app.consumer_generation_id:
            return None, event
        if message.topic in app.topics.acking_topics and not message.tracked:
            message.tracked = True
            app.consumer.track_message(message)
        self.stream.events_total += 1  # type: ignore[attr-defined]  # Stream's, not in StreamT
        return event, None


async def gated_batches(app: Any, stream: faust.StreamT[Any], max_events: int) -> AsyncIterator[Batch]:
    """The agent's events as batches of one input partition (module docstring). The batch's table writes are
    flushed when the agent is done with it, and its events acknowledged after that."""
    gates = gate_for(app)
    pause = state_of(app).rebalance_pause
    channel = _Channel(app, stream)
    # Faust's iterator acknowledges what it yielded only when asked for the next event, which a batch started by
    # ``pending`` never does (module docstring): every processed event is acknowledged here instead, after its batch.
    # Events Faust skips (an ended generation, flow control suspended) it still acknowledges itself.
    acks_were = stream.enable_acks
    stream.enable_acks = False
    events = stream.events().__aiter__()
    pending: faust.EventT[Any] | None = None
    unacked_first: faust.EventT[Any] | None = None  # handed out by Faust's iterator, its batch not done yet
    try:
        while True:
            taken: list[faust.EventT[Any]] = []  # the batch's events and the skipped ones: acknowledged after it
            if pending is None:
                try:
                    first = unacked_first = await events.__anext__()
                except StopAsyncIteration:
                    return
            else:
                first, pending = pending, None
            taken.append(first)
            tp = first.message.tp
            batch = Batch(tp, [first])
            hold = await gates.hold(input_transactional_id(app, tp))
            pause.processing(app.consumer_generation_id)
            try:
                while len(batch.events) < max_events and channel.ready():
                    event, skipped = channel.take()
                    if skipped is not None:
                        taken.append(skipped)
                    elif event is not None and event.message.tp != tp:
                        pending = event  # the next batch's first event
                        break
                    elif event is not None:
                        taken.append(event)
                        batch.events.append(event)
                token, current = ACTIVE.set(batch.cache), _BATCH.set(batch)
                try:
                    yield batch
                    if batch.lost is None:
                        try:
                            await batch.flush(app)
                        except KAFKA_FAILURES as exc:
                            batch.lose(exc)
                finally:
                    _reset(ACTIVE, token)
                    _reset(_BATCH, current)
                if batch.lost is None:
                    _run_after(batch)
                else:
                    await _abandon(app, batch)
                # Acknowledged before the gate opens: a commit reads the offsets once it holds the gate
                # (``_Consumer.force_commit``), and must find there every event whose effects its transaction holds.
                unacked_first = None
                for event in taken:
                    await stream.ack(event)
            finally:
                gates.release(hold)
    finally:
        if unacked_first is not None:
            # A batch that raised: Faust's iterator acknowledged the event it handed out when it was closed, with
            # acks on; kept so (the events taken from the channel stay unacknowledged, as before).
            await stream.ack(unacked_first)
        await events.aclose()  # Faust's iterator ends here, not whenever it is garbage-collected
        stream.enable_acks = acks_were


async def _abandon(app: Any, batch: Batch) -> None:
    """A batch Kafka failed under: its writes are dropped (or, if its flush got as far as the stores, wiped with
    the partition's local state), and its partition commits nothing until a rebalance has restored that state and
    rewound the partition to its committed offset — its events are then processed again, here or by the worker
    that owns the partition now. Its events are still acknowledged (Faust waits for every tracked event before it
    gives partitions up); the partition being corrupt is what keeps their offsets from committing. The agent goes
    on: Kafka Streams closes such a task dirty and rejoins; Faust's agent would crash, and a restarted agent has
    lost the record it was on."""
    repair = repair_for(app)
    tid = input_transactional_id(app, batch.tp)
    repair.lost(tid, "batch_failed", repr(batch.lost))
    log.warning(
        "a batch of %d events of %s could not take effect (%r): it is processed again after a rebalance",
        len(batch.events),
        batch.tp,
        batch.lost,
    )
    try:
        await repair.request_rebalance()
    except Exception as exc:  # the consumer is going away anyway: its partitions are rebalanced without asking
        log.warning("could not request a rebalance after a lost batch: %r", exc)


_BATCH: ContextVar[Batch | None] = ContextVar("crownstream_batch", default=None)


def after_batch(key: Hashable, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the current batch's table writes are in the stores, where other tasks (the HTTP
    views) read them — at once outside a batch. One callback per ``key`` per batch: waking a stage's live pages
    once for a batch that changed it fifty times."""
    batch = _BATCH.get()
    if batch is None:
        callback()
    else:
        batch.after.setdefault(key, callback)


def _run_after(batch: Batch) -> None:
    for callback in batch.after.values():
        try:
            callback()
        except Exception:  # a wake-up that failed must not take the agent down with the batch already done
            log.exception("a callback after a batch failed", extra={"callback": repr(callback)})


def batch_active() -> bool:
    """Whether the current task is processing a micro-batch: its table reads see the batch's own writes, which the
    stores (and so every other task) see only once the batch ends."""
    return ACTIVE.get() is not None


def _reset(var: Any, token: Any) -> None:
    try:
        var.reset(token)
    except ValueError:  # closed from another task's context (an agent that crashed): nothing to restore there
        var.set(None)
