"""The micro-batch write cache (crownstream/engine/write_cache.py): writes compacted per key, flushed once per key
in first-write order, each event a savepoint that a failed event drops, reads that see the batch's own writes."""

from __future__ import annotations

from typing import Any

from crownstream.engine.write_cache import _ABSENT, _UNKNOWN, WriteCache


class RecordingTable:
    """Stands in for a CachedTable's store side: records what the cache writes through, in order."""

    def __init__(self, name: str, log: list[tuple[str, Any, Any]]) -> None:
        self.name, self.log = name, log

    def write_through(self, key: Any, encoded: Any, changelog: list | None = None) -> None:
        self.log.append((self.name, key, None if encoded is _ABSENT else encoded))


def tables() -> tuple[list[tuple[str, Any, Any]], RecordingTable, RecordingTable]:
    log: list[tuple[str, Any, Any]] = []
    return log, RecordingTable("stages", log), RecordingTable("activity", log)


def test_a_key_written_by_every_event_of_a_batch_is_flushed_once_with_its_last_value():
    log, _, activity = tables()
    cache = WriteCache()
    for n in range(500):
        cache.write(activity, "t1", b"%d" % n)
        cache.end_event(took_effect=True)
    assert log == []  # nothing reaches the changelog or the store before the batch ends
    assert cache.flush() == 1
    assert log == [("activity", "t1", b"499")]


def test_flush_writes_keys_in_the_order_they_were_first_written_across_tables():
    log, stages, activity = tables()
    cache = WriteCache()
    cache.write(stages, "t1/br", b"s1")
    cache.write(activity, "t1", b"a1")
    cache.end_event(took_effect=True)
    cache.write(stages, "t2/br", b"s2")
    cache.write(stages, "t1/br", b"s1'")  # rewritten later: keeps its first place, takes its last value
    cache.end_event(took_effect=True)
    cache.flush()
    assert log == [("stages", "t1/br", b"s1'"), ("activity", "t1", b"a1"), ("stages", "t2/br", b"s2")]


def test_a_failed_event_leaves_none_of_its_writes_and_the_events_around_it_keep_theirs():
    log, stages, activity = tables()
    cache = WriteCache()
    cache.write(stages, "k", b"before")
    cache.end_event(took_effect=True)
    cache.write(stages, "k", b"half-applied")
    cache.write(activity, "only-the-failed-event", b"x")
    assert cache.lookup(stages, "k") == b"half-applied"  # the event sees its own writes while it runs
    cache.end_event(took_effect=False)
    assert cache.lookup(stages, "k") == b"before"
    assert cache.lookup(activity, "only-the-failed-event") is _UNKNOWN
    cache.write(activity, "after", b"y")
    cache.end_event(took_effect=True)
    cache.flush()
    assert log == [("stages", "k", b"before"), ("activity", "after", b"y")]


def test_a_batch_that_is_abandoned_writes_nothing():
    # gated_batches flushes only when the agent is done with the batch; an agent that raised (or a worker that
    # stops) abandons the cache, and the batch's events are re-read from the committed offset.
    log, stages, _ = tables()
    cache = WriteCache()
    cache.write(stages, "k", b"v")
    cache.end_event(took_effect=True)
    del cache
    assert log == []


def test_reads_come_from_the_event_then_the_batch_then_what_was_read_from_the_store():
    log, stages, _ = tables()
    cache = WriteCache()
    assert cache.lookup(stages, "k") is _UNKNOWN
    cache.remember(stages, "k", b"stored")
    assert cache.lookup(stages, "k") == b"stored"
    cache.write(stages, "k", b"batch")
    cache.end_event(took_effect=True)
    assert cache.lookup(stages, "k") == b"batch"
    cache.write(stages, "k", _ABSENT)  # deleted by the current event
    assert cache.lookup(stages, "k") is _ABSENT
    cache.end_event(took_effect=True)
    cache.flush()
    assert log == [("stages", "k", None)]
    assert cache.lookup(stages, "k") is _ABSENT  # the flushed value is what later reads of the batch see


def test_flushing_one_table_leaves_the_others_pending():
    # What a table's iteration does inside a batch: that table's writes go through first, the rest wait.
    log, stages, activity = tables()
    cache = WriteCache()
    cache.write(stages, "s", b"1")
    cache.write(activity, "a", b"2")
    assert cache.dirty(stages) == 1 and cache.dirty() == 2
    assert cache.flush(stages) == 1
    assert log == [("stages", "s", b"1")]
    assert cache.dirty() == 1
    cache.flush()
    assert log == [("stages", "s", b"1"), ("activity", "a", b"2")]
