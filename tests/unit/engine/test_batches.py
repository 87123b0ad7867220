"""Micro-batches (crownstream/engine/batches.py): what is already delivered to the stream is taken without waiting,
a batch never spans two input partitions, a commit waits for the whole batch, events of an ended generation are
acknowledged unprocessed, and every event taken from the channel is acknowledged once, after its batch.

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
    def __init__(self) -> None:
        self.conf = SimpleNamespace(id="cs")
        self.assignor = SimpleNamespace(group_for_topic=lambda topic: 0)
        self.flow_control = SimpleNamespace(is_active=lambda: True)
        self.consumer_generation_id = 1
        self.topics = SimpleNamespace(acking_topics={TOPIC})
        self.tracked: list[str] = []
        self.consumer = SimpleNamespace(track_message=lambda m: self.tracked.append(f"{m.partition}:{m.offset}"))
        self.in_transaction = False
        self.gate = CommitGate()
        attach(self, EngineState(settings=None, commit_gate=self.gate, state_repair=None))  # type: ignore[arg-type]


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

    async def events(self):
        while True:
            while self.queue.empty():
                self.more.clear()
                await self.more.wait()
            current = self.queue.get_nowait()
            yield current
            self.faust_acked.append(current.value)  # Faust acks an event when asked for the next one

    async def ack(self, event: Any) -> None:
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
    # After the first batch: the event the batcher took (0:1) by the batcher; 0:0 by Faust's iterator when the next
    # batch was asked for. 1:0 was taken from the channel by the batcher while it formed the first batch.
    assert stream.acked == ["0:1"]
    stream.queue.items.append(event(0, 2))
    stream.more.set()
    await agen.__anext__()
    assert sorted(stream.acked + stream.faust_acked) == ["0:0", "0:1", "1:0", "1:1"]
    await agen.aclose()


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

    async def commit() -> None:
        async with app.gate.committing(["cs-0-0"]):
            committed.set()

    committer = asyncio.create_task(commit())
    await asyncio.sleep(0.01)
    assert not committed.is_set()  # the batch is still being processed
    stream.queue.items.append(event(0, 2))
    stream.more.set()
    await agen.__anext__()  # done with the first batch: the commit goes first, then the next batch
    assert committed.is_set()
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
