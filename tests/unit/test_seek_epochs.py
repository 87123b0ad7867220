from aiokafka import TopicPartition
from faust.types import TP

from crownstream.seek_epochs import SeekEpochs, StampedRecords

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
