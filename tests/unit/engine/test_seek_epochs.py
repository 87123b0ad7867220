import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import Consumer as FaustAiokafkaConsumer
from faust.types import TP

from crownstream.engine.consumer import _Consumer
from crownstream.engine.seek_epochs import SeekEpochs, StampedRecords

EVENTS = TopicPartition("events", 3)


def test_a_batch_is_stale_for_a_partition_sought_after_it_was_fetched():
    epochs = SeekEpochs()
    batch = epochs.stamp([EVENTS, TopicPartition("events", 4)])
    epochs.sought([EVENTS])
    # Faust hands the records on under its own TP type: the same partition.
    assert epochs.is_stale(batch, TP("events", 3))
    assert not epochs.is_stale(batch, TP("events", 4))


def test_a_batch_fetched_after_the_seek_is_fresh_and_unstamped_batches_pass():
    epochs = SeekEpochs()
    epochs.sought([EVENTS])
    assert not epochs.is_stale(epochs.stamp([EVENTS]), EVENTS)
    assert not epochs.is_stale(None, EVENTS)


def test_every_seek_counts_even_back_to_the_same_offset():
    epochs = SeekEpochs()
    epochs.sought([EVENTS])
    batch = epochs.stamp([EVENTS])
    epochs.sought([EVENTS])
    assert epochs.is_stale(batch, EVENTS)


def test_stamped_records_stay_a_mapping_of_records():
    records = StampedRecords({EVENTS: ["r1", "r2"]})
    records.seek_epochs = {("events", 3): 1}
    assert dict(records) == {EVENTS: ["r1", "r2"]} and records.seek_epochs == {("events", 3): 1}


def test_records_of_a_partition_whose_seek_is_decided_but_not_done_are_stale_whenever_fetched():
    epochs = SeekEpochs()
    before = epochs.stamp([EVENTS])
    epochs.seeking([EVENTS, TopicPartition("events", 4)])
    during = epochs.stamp([EVENTS])  # fetched from the old position, after the decision
    assert epochs.is_stale(before, EVENTS) and epochs.is_stale(during, EVENTS) and epochs.is_stale(None, EVENTS)
    epochs.sought([EVENTS])
    assert epochs.is_stale(during, EVENTS)  # its seek has now moved the position: read again from there
    assert not epochs.is_stale(epochs.stamp([EVENTS]), EVENTS)


def test_a_partition_already_sought_is_fresh_while_another_still_waits_for_its_seek():
    # Dropping these would lose them: their position is past them and no seek will bring it back.
    epochs = SeekEpochs()
    other = TopicPartition("events", 4)
    epochs.seeking([EVENTS, other])
    epochs.sought([EVENTS])
    fetched = epochs.stamp([EVENTS, other])
    assert not epochs.is_stale(fetched, EVENTS)
    assert epochs.is_stale(fetched, other)


def test_abandoned_seeks_release_their_partitions_without_a_new_epoch():
    epochs = SeekEpochs()
    other = TopicPartition("events", 4)
    batch = epochs.stamp([EVENTS, other])
    epochs.seeking([EVENTS, other])
    epochs.sought([other])
    assert epochs.abandon([EVENTS, other]) == [("events", 3)]
    assert not epochs.is_stale(batch, EVENTS)  # no seek happened: its position still follows this batch
    assert epochs.is_stale(batch, other)
    assert epochs.abandon([EVENTS, other]) == []


async def test_the_consumer_delivers_what_was_fetched_after_its_seek_while_perform_seek_goes_on(monkeypatch):
    """Faust's perform_seek (faked: it seeks one partition and then waits on the broker for the other's
    committed offset) runs while the fetcher hands over a batch of both partitions."""
    epochs = SeekEpochs()
    other = TopicPartition("events", 4)
    broker_answers = asyncio.Event()
    batches: list[StampedRecords] = []

    async def perform_seek(self):
        epochs.seeking([EVENTS, other])
        epochs.sought([EVENTS])
        await broker_answers.wait()
        epochs.sought([other])

    async def wait_next_records(self, timeout):
        return batches.pop(0), None

    async def faust_getmany(self, timeout):
        records, _ = await self._wait_next_records(timeout)
        for tp, batch in records.items():
            for record in batch:
                yield TP(tp.topic, tp.partition), record

    monkeypatch.setattr(FaustAiokafkaConsumer, "perform_seek", perform_seek)
    monkeypatch.setattr(FaustAiokafkaConsumer, "_wait_next_records", wait_next_records)
    monkeypatch.setattr(FaustAiokafkaConsumer, "getmany", faust_getmany)
    consumer = _Consumer.__new__(_Consumer)
    # client_only: the fetch loop's own waits (F25, test_fetch_wakeup.py) are left to Faust's, faked above.
    consumer.app = SimpleNamespace(tables=SimpleNamespace(changelog_topics=set()), client_only=True)
    consumer._thread = SimpleNamespace(seek_epochs=epochs)

    seeking = asyncio.create_task(consumer.perform_seek())
    await asyncio.sleep(0)
    fetched = StampedRecords({EVENTS: ["e3@sought-offset"], other: ["e4@old-position"]})
    fetched.seek_epochs = epochs.stamp(fetched)
    batches.append(fetched)
    delivered = [record async for _, record in consumer.getmany(timeout=1.0)]
    assert delivered == ["e3@sought-offset"]  # the other one is read again once its seek is done
    broker_answers.set()
    await seeking


class _SeekingConsumer:
    """What ``_seek_streams_to_committed`` uses of an aiokafka consumer: its assignment, the group coordinator's
    committed offsets, and seeks. Each seek is recorded with two facts taken at that moment: whether a batch
    fetched before the call is now stale for the partition, and whether a batch fetched now would be held back."""

    def __init__(self, assignment, committed, epochs):
        self._assignment, self._committed, self._epochs = set(assignment), committed, epochs
        self.before = epochs.stamp(assignment)
        self.requests: list[list] = []
        self.seeks: list[tuple] = []
        self._coordinator = SimpleNamespace(fetch_committed_offsets=self._fetch)

    def assignment(self):
        return set(self._assignment)

    async def _fetch(self, partitions):
        self.requests.append(sorted(partitions))
        return {tp: SimpleNamespace(offset=self._committed[tp]) for tp in partitions if tp in self._committed}

    def _facts(self, tp):
        return self._epochs.is_stale(self.before, tp), self._epochs.is_stale(self._epochs.stamp([tp]), tp)

    def seek(self, tp, offset):
        self.seeks.append((tp, offset, *self._facts(tp)))


async def test_streams_are_sought_to_their_committed_offsets_asked_in_one_request():
    from crownstream.engine.consumer_thread import _LsoFromBrokerConsumerThread

    changelog, never, fresh = TopicPartition("t-changelog", 3), TopicPartition("events", 5), TopicPartition("events", 6)
    thread = _LsoFromBrokerConsumerThread.__new__(_LsoFromBrokerConsumerThread)
    thread.seek_epochs = epochs = SeekEpochs()
    thread.consumer = SimpleNamespace(app=SimpleNamespace(tables=SimpleNamespace(changelog_topics={"t-changelog"})))
    consumer = _SeekingConsumer([EVENTS, never, fresh, changelog], {EVENTS: 42, never: -1, fresh: 0}, epochs)

    committed = await thread._seek_streams_to_committed(consumer)

    assert consumer.requests == [sorted([EVENTS, never, fresh])]  # one round trip, no changelog asked for
    # At each seek the partition is marked sought: what was fetched before is stale, what is fetched now is kept.
    # Never committed: from offset 0, which auto_offset_reset=earliest moves to the first record if it is gone.
    assert sorted(consumer.seeks) == sorted(
        [(EVENTS, 42, True, False), (never, 0, True, False), (fresh, 0, True, False)]
    )
    assert committed == {EVENTS: 42, never: None, fresh: 0, changelog: None}
    assert not epochs.abandon([EVENTS, never, fresh])  # nothing left pending


async def test_a_partition_revoked_while_offsets_are_asked_for_is_not_sought():
    from crownstream.engine.consumer_thread import _LsoFromBrokerConsumerThread

    moved = TopicPartition("events", 7)
    thread = _LsoFromBrokerConsumerThread.__new__(_LsoFromBrokerConsumerThread)
    thread.seek_epochs = epochs = SeekEpochs()
    thread.consumer = SimpleNamespace(app=SimpleNamespace(tables=SimpleNamespace(changelog_topics=set())))
    consumer = _SeekingConsumer([EVENTS, moved], {EVENTS: 3, moved: 9}, epochs)
    fetch = consumer._fetch

    async def rebalanced_meanwhile(partitions):
        consumer._assignment.discard(moved)
        return await fetch(partitions)

    consumer._coordinator.fetch_committed_offsets = rebalanced_meanwhile
    await thread._seek_streams_to_committed(consumer)
    assert consumer.seeks == [(EVENTS, 3, True, False)]
    assert not epochs.is_stale(None, moved)  # no longer held back: the next rebalance seeks it if it comes back
