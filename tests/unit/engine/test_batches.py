"""Micro-batches (crownstream/engine/batches.py): what is already delivered to the stream is taken without waiting,
a batch never spans two input partitions, a commit waits for the whole batch, events of an ended generation are
acknowledged unprocessed, and every event of a batch is acknowledged once, right after its batch — the first one
too, while the channel keeps delivering other partitions' events.

The stream here is a stand-in with the parts of Faust's Stream the batcher uses (``events()``, ``channel.queue``,
``ack``); the commit gate is the real one."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from crownstream.engine.batches import gated_batches
from crownstream.engine.commit_gate import CommitGate
from crownstream.engine.state import EngineState, attach
from crownstream.engine.state_repair import StateRepair
from crownstream.engine.write_cache import ACTIVE

TOPIC = "cs.tournament-events"


class Event:  # Faust's current event is held by weak reference
    def __init__(self, message: Any, value: str) -> None:
        self.message, self.value = message, value


def event(partition: int, offset: int, generation: int = 1) -> Any:
    message = SimpleNamespace(
        tp=TP(TOPIC, partition),
        topic=TOPIC,
        partition=partition,
        offset=offset,
        generation_id=generation,
        tracked=False,
    )
    return Event(message, f"{partition}:{offset}")


class Queue:
    def __init__(self) -> None:
        self.items: deque[Any] = deque()

    def empty(self) -> bool:
        return not self.items

    def get_nowait(self) -> Any:
        return self.items.popleft()


class FakeApp:
    def __init__(self, repair: Any = None) -> None:
        self.conf = SimpleNamespace(id="cs")
        self.assignor = SimpleNamespace(group_for_topic=lambda topic: 0)
        self.flow_control = SimpleNamespace(is_active=lambda: True)
        self.consumer_generation_id = 1
        self.topics = SimpleNamespace(acking_topics={TOPIC})
        self.tracked: list[str] = []
        self.consumer = SimpleNamespace(track_message=lambda m: self.tracked.append(f"{m.partition}:{m.offset}"))
        self.in_transaction = False
        self.gate = CommitGate()
        attach(self, EngineState(settings=None, commit_gate=self.gate, state_repair=repair))


class FakeStream:
    """Faust's iterator yields the first delivered event and waits when there is none; the rest sit in the channel."""

    def __init__(self, delivered: list[Any]) -> None:
        self.queue = Queue()
        self.queue.items.extend(delivered)
        self.channel = SimpleNamespace(queue=self.queue)
        self.events_total = 0
        self.acked: list[str] = []
        self.faust_acked: list[str] = []
        self.more = asyncio.Event()
        self.enable_acks = True

    async def events(self):
        while True:
            do_ack = self.enable_acks  # read as Faust's iterator reads it: before it waits for the next event
            while self.queue.empty():
                self.more.clear()
                await self.more.wait()
            current = self.queue.get_nowait()
            try:
                yield current
            finally:
                if do_ack:  # Faust acks an event when asked for the next one, or when closed
                    self.faust_acked.append(current.value)

    async def ack(self, event: Any) -> None:
        await asyncio.sleep(0)  # may suspend: a commit must not get in between the batch and its acknowledgements
        self.acked.append(event.value)


async def batches_of(app: FakeApp, stream: FakeStream, count: int, max_events: int = 100) -> list[list[str]]:
    seen: list[list[str]] = []
    agen = gated_batches(app, stream, max_events)
    async for batch in agen:
        seen.append([e.value for e in batch.events])
        if len(seen) == count:
            break
    await agen.aclose()
    return seen


async def test_a_batch_is_what_was_delivered_of_one_partition_and_the_next_partition_starts_the_next_batch():
    app = FakeApp()
    stream = FakeStream([event(0, 0), event(0, 1), event(0, 2), event(1, 0), event(1, 1), event(0, 3)])
    assert await batches_of(app, stream, 3) == [["0:0", "0:1", "0:2"], ["1:0", "1:1"], ["0:3"]]
    assert app.tracked == ["0:1", "0:2", "1:0", "1:1", "0:3"]  # the events the batcher took itself


async def test_max_events_caps_a_batch():
    app = FakeApp()
    stream = FakeStream([event(0, n) for n in range(7)])
    assert await batches_of(app, stream, 3, max_events=3) == [["0:0", "0:1", "0:2"], ["0:3", "0:4", "0:5"], ["0:6"]]


async def test_every_event_is_acknowledged_once_after_its_batch_was_processed():
    app = FakeApp()
    stream = FakeStream([event(0, 0), event(0, 1), event(1, 0), event(1, 1)])
    agen = gated_batches(app, stream, 100)
    first = await agen.__anext__()
    assert stream.acked == [] and stream.faust_acked == []  # nothing acknowledged while the batch is processed
    assert [e.value for e in first.events] == ["0:0", "0:1"]
    second = await agen.__anext__()
    assert [e.value for e in second.events] == ["1:0", "1:1"]
    assert stream.acked == ["0:0", "0:1"]  # the first batch, all of it, once it was done
    stream.queue.items.append(event(0, 2))
    stream.more.set()
    await agen.__anext__()
    assert stream.acked == ["0:0", "0:1", "1:0", "1:1"]
    await agen.aclose()
    assert stream.faust_acked == []  # Faust's own acks are off: none twice
    assert stream.enable_acks  # and back on once the batcher is done with the stream


async def test_the_first_event_of_a_batch_is_acknowledged_while_other_partitions_keep_the_channel_busy():
    """#15: Faust acknowledges the event its iterator handed out only when asked for the next one. A batch that
    starts with another partition's event already taken from the channel does not ask, so while two partitions'
    backlogs interleaved, partition 0's first event (0:0) stayed unacknowledged batch after batch — Faust commits a
    partition only up to its first unacknowledged offset, so 0:1 ... 0:5 had their outputs committed with offsets
    that did not cover them, and a rebalance had them processed again."""
    app = FakeApp()
    stream = FakeStream([event(p, n) for n in range(8) for p in (0, 1)])  # 0:0 1:0 0:1 1:1 ...
    agen = gated_batches(app, stream, 100)
    for _ in range(12):  # 11 batches done, the 12th (1:5) being processed
        await agen.__anext__()  # batches of one; every one after the first starts with the event the last one met
    assert stream.queue.items  # the channel never ran dry: the batcher never asked Faust's iterator again
    # Every batch processed so far is acknowledged: partition 0's offsets can be committed up to 0:5.
    assert [v for v in stream.acked + stream.faust_acked if v.startswith("0:")] == [f"0:{n}" for n in range(6)]
    await agen.aclose()


async def test_a_batch_that_raised_leaves_its_first_event_acknowledged_as_faust_did():
    app = FakeApp()
    stream = FakeStream([event(0, 0), event(0, 1)])
    agen = gated_batches(app, stream, 100)
    await agen.__anext__()
    try:
        await agen.athrow(RuntimeError("handler crashed"))
    except RuntimeError:
        pass
    # Faust acknowledged it when its iterator was closed (acks on); 0:1 stays unacknowledged
    assert stream.acked + stream.faust_acked == ["0:0"]


async def test_events_of_an_ended_generation_are_acknowledged_unprocessed():
    app = FakeApp()
    stream = FakeStream([event(0, 0), event(0, 1, generation=0), event(0, 2)])
    agen = gated_batches(app, stream, 100)
    batch = await agen.__anext__()
    assert [e.value for e in batch.events] == ["0:0", "0:2"]
    stream.queue.items.append(event(0, 3))
    stream.more.set()
    await agen.__anext__()
    assert "0:1" in stream.acked
    await agen.aclose()


async def test_a_commit_waits_for_the_whole_batch_and_the_write_cache_is_active_only_inside_it():
    app = FakeApp()
    stream = FakeStream([event(0, 0), event(0, 1)])
    agen = gated_batches(app, stream, 100)
    batch = await agen.__anext__()
    assert ACTIVE.get() is batch.cache
    committed = asyncio.Event()

    acknowledged_at_commit: list[str] = []

    async def commit() -> None:
        async with app.gate.committing(["cs-0-0"]):
            acknowledged_at_commit.extend(stream.acked)  # what the commit reads its offsets from
            committed.set()

    committer = asyncio.create_task(commit())
    await asyncio.sleep(0.01)
    assert not committed.is_set()  # the batch is still being processed
    stream.queue.items.append(event(0, 2))
    stream.more.set()
    await agen.__anext__()  # done with the first batch: the commit goes first, then the next batch
    assert committed.is_set()
    assert acknowledged_at_commit == ["0:0", "0:1"]  # the whole batch, acknowledged before the gate opened
    await committer
    await agen.aclose()
    assert ACTIVE.get() is None


async def test_after_batch_runs_once_per_key_when_the_batch_is_done_and_at_once_outside_a_batch():
    from crownstream.engine.batches import after_batch

    calls: list[str] = []
    after_batch("x", lambda: calls.append("outside"))
    assert calls == ["outside"]
    app = FakeApp()
    stream = FakeStream([event(0, 0), event(0, 1)])
    agen = gated_batches(app, stream, 100)
    await agen.__anext__()
    for n in range(3):  # every event of the batch woke the same stage
        after_batch(("live", "t1"), lambda n=n: calls.append(f"stage t1 ({n})"))
    after_batch(("live", "t2"), lambda: calls.append("stage t2"))
    assert calls == ["outside"]  # not while the batch is being processed: its writes are not in the stores yet
    stream.queue.items.append(event(0, 2))
    stream.more.set()
    await agen.__anext__()
    assert calls == ["outside", "stage t1 (0)", "stage t2"]
    await agen.aclose()


class StoreSide:
    """A table's store side as the write cache sees it (``write_through``): records what reaches it."""

    def __init__(self) -> None:
        self.written: list[Any] = []

    def write_through(self, key: Any, encoded: Any, changelog: list | None = None) -> None:
        self.written.append(key)


class RecordingRepair(StateRepair):
    """The real state repair; the rebalance it asks the consumer for is recorded instead (no consumer here)."""

    def __init__(self) -> None:
        super().__init__(app=None)
        self.rebalances = 0

    async def request_rebalance(self) -> None:
        self.rebalances += 1


def app_with_repair() -> tuple[FakeApp, RecordingRepair]:
    repair = RecordingRepair()
    return FakeApp(repair), repair


async def test_a_batch_kafka_failed_under_takes_no_effect_its_partition_is_read_again_and_the_agent_goes_on():
    from aiokafka.errors import ProducerFenced

    from crownstream.engine.batches import after_batch

    app, repair = app_with_repair()
    stream = FakeStream([event(0, 0), event(0, 1), event(1, 0)])
    agen = gated_batches(app, stream, 100)
    woken: list[str] = []
    table = StoreSide()
    batch = await agen.__anext__()
    for e in batch.events:
        with batch.processing(e):
            batch.cache.write(table, e.value, b"written")
            after_batch("stage", lambda: woken.append("stage"))
    batch.lose(ProducerFenced())
    second = await agen.__anext__()  # the agent goes on with the next batch
    assert [e.value for e in second.events] == ["1:0"]
    assert table.written == []  # nothing of the lost batch reached the store
    assert woken == []  # nor woke anyone up
    assert repair.is_corrupt("cs-0-0") and repair.rebalances == 1  # its partition commits nothing until restored
    assert stream.acked == ["0:0", "0:1"]  # acknowledged (Faust waits for them), never committed: corrupt
    await agen.aclose()


async def test_a_flush_kafka_refuses_loses_the_batch_instead_of_raising_into_the_agent():
    from aiokafka.errors import IllegalOperation

    from crownstream.engine import batches

    app, repair = app_with_repair()
    stream = FakeStream([event(0, 0), event(1, 0)])
    agen = gated_batches(app, stream, 100)
    await agen.__anext__()

    async def refused(self, app):
        raise IllegalOperation("Can't send messages while not in transaction")

    original = batches.Batch.flush
    batches.Batch.flush = refused  # type: ignore[method-assign]
    try:
        second = await agen.__anext__()
    finally:
        batches.Batch.flush = original  # type: ignore[method-assign]
    assert [e.value for e in second.events] == ["1:0"]
    assert repair.is_corrupt("cs-0-0") and not repair.is_corrupt("cs-0-1") and repair.rebalances == 1
    await agen.aclose()
