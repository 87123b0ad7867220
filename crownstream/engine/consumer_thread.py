"""The consumer thread (aiokafka, run by faust in a thread of its own): changelog highwaters asked of the broker
(UPSTREAM.md F6), stream partitions sought to their committed offsets in one request (F7), every batch stamped
with its partitions' seek epochs (F8), recovery's standby seek made safe (F9), and a livelock detector that
skips a partition awaiting its offset reset (F10), the consumer's committed-offset fetches made stable (F19,
``offset_fetch.py``) and its fetch long poll shortened (F19). Installed by ``consumer._Consumer._new_consumer_thread``
(UPSTREAM.md W).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import RecordMap
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from crownstream.engine.offset_fetch import install_stable_offset_fetch
from crownstream.engine.seek_epochs import SeekEpochs, StampedRecords
from crownstream.engine.state import state_of

log = logging.getLogger(__name__)


class _LsoFromBrokerConsumerThread(AIOKafkaConsumerThread):
    """Table recovery compares a partition's persisted offset with its "highwater". Under exactly_once
    faust-streaming takes that from ``last_stable_offset(tp)``, which the consumer only knows after it has
    fetched from the partition — ``None`` for a freshly assigned one, which Faust turns into -1. Recovery
    then either raises ConsistencyError (a standby's persisted offset > -1: the worker crashes right when
    it should take over from a dead one) or skips replaying records it has not read. ``end_offsets`` on a
    read_committed consumer asks the broker, which answers with the last stable offset: the right number,
    always known."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Bumped here, in the consumer's thread, as each partition is sought (crownstream/engine/seek_epochs.py).
        self.seek_epochs = SeekEpochs()

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        """Faust's worker consumer with the fetch long poll of ``CROWNSTREAM_CONSUMER_FETCH_MAX_WAIT_MS`` instead of
        a fixed 1.5 s. The broker answers a connection's requests in order, and the end offsets each rebalance's
        recovery asks on this consumer (changelog highwaters, standby offsets) waited behind an idle fetch 1.5 s
        apiece. A fetch still returns as soon as records arrive; a shorter poll costs an idle worker a few more
        fetch requests a second."""
        consumer: AIOKafkaConsumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = state_of(self.consumer.app).settings.consumer_fetch_max_wait_ms  # read by start()
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        if state_of(self.consumer.app).settings.processing_guarantee == "exactly_once":
            # Before faust subscribes: every committed-offset fetch of this consumer is stable (offset_fetch.py).
            install_stable_offset_fetch(self._ensure_consumer())

    async def _highwaters(self, partitions: Iterable[TP]) -> Mapping[TP, int]:
        ends: dict[TP, int] = await self._ensure_consumer().end_offsets(list(partitions))  # aiokafka: unannotated
        return ends

    async def _fetch_records(
        self,
        consumer: AIOKafkaConsumer,
        active_partitions: set[TP],
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> RecordMap:
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        stamped = StampedRecords(records)
        stamped.seek_epochs = self.seek_epochs.stamp(records)
        return stamped

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """After every rebalance's recovery Faust seeks the stream partitions back to their committed offsets, so
        that records fetched during the rebalance — which the streams skip as belonging to an old generation or
        arriving while flow control was suspended — are read again. aiokafka's ``seek_to_committed`` only seeks
        a partition that *has* a committed offset greater than 0: a partition nobody ever committed (its owner
        was killed before its first commit, or its first events came after the kill) keeps the position the
        fetcher reached, and the skipped records are lost for good — the survivor of a kill -9 reads to the end
        of the partition and applies nothing. Such a partition is sought to its beginning, which is what
        auto_offset_reset=earliest promises and what exactly-once needs (nothing of it was ever committed).
        Changelog partitions are left alone: recovery positions those itself."""
        # Typed as faust's own; like aiokafka's answer, it holds None for the changelog partitions.
        committed: Mapping[TP, int] = await self.call_thread(self._seek_streams_to_committed, self._ensure_consumer())
        return committed

    async def _seek_streams_to_committed(self, consumer: AIOKafkaConsumer) -> dict[TP, int | None]:
        """aiokafka's seek_to_committed in one request and one step: every stream partition's committed offset
        (aiokafka asks one partition per round trip), then each partition marked sought and sought with no await in
        between — it runs in the consumer's thread, so no fetch returns between two seeks. A partition never
        committed is sought to offset 0: past a deleted head the fetch answers "out of range" and
        auto_offset_reset=earliest (crownstream/app.py) moves it to the first record. (aiokafka's
        seek_to_beginning asks the broker first, on the connection that the fetcher's 1.5-s long poll holds:
        1.5 s of every rebalance of a worker with such partitions.) Until its seek, a stream partition's records
        come from its old position and are held back (``SeekEpochs.seeking``). Changelogs are left alone."""
        changelogs = self.consumer.app.tables.changelog_topics
        streams = [tp for tp in consumer.assignment() if tp.topic not in changelogs]
        self.seek_epochs.seeking(streams)
        # The group never commits a changelog partition: as before, Faust takes None for their read offsets.
        committed: dict[TP, int | None] = {tp: None for tp in consumer.assignment() if tp.topic in changelogs}
        try:
            answer = await consumer._coordinator.fetch_committed_offsets(streams)
            for tp in streams:
                meta = answer.get(tp)
                committed[tp] = None if meta is None or meta.offset < 0 else meta.offset
            assigned = consumer.assignment()
            targets = {tp: committed[tp] or 0 for tp in streams if tp in assigned}
            self.seek_epochs.sought(targets)
            for tp, offset in targets.items():
                consumer.seek(tp, offset)
        finally:
            # Interrupted (a rebalance, the broker gone): the partitions left unsought keep their positions,
            # as Faust would; the next rebalance seeks them again.
            left = self.seek_epochs.abandon(streams)
            if left:
                log.warning("seek to committed offsets interrupted before %d partitions: %s", len(left), left[:5])
        return committed

    def verify_event_path(self, now: float, tp: TP) -> None:
        """faust-streaming's livelock detector reads every partition's fetch position. Right after a seek to
        the beginning (``seek_to_committed`` above) aiokafka has no position until its next fetch resolves
        the reset, and reading it raises AssertionError — which crashes the consumer and the worker. The
        detector only logs; a partition awaiting its offset reset has nothing to report yet."""
        try:
            subscription = self._ensure_consumer()._fetcher._subscriptions.subscription
            state = subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition))
        except (AttributeError, KeyError):
            return None
        if state is None or not state.has_valid_position:
            return None
        return super().verify_event_path(now, tp)

    async def _seek_wait(self, consumer: AIOKafkaConsumer, partitions: Mapping[TP, int | None]) -> None:
        """Recovery seeks standby changelog partitions to offsets it builds per recovery round. When a second
        rebalance interrupts a round (a worker joins or dies while another one recovers — routine when a
        group scales), faust-streaming logs "Error in recovery … is not assigned", still goes on to "Starting
        standby partitions", and seeks partitions whose offset was never built (``None``) or that are no
        longer assigned — aiokafka raises and the whole worker crashes. An unknown offset means "read the
        changelog from its start" (as -1 does for faust), and a partition no longer assigned is skipped: the
        next rebalance starts a new recovery round for whatever this worker holds then."""
        assigned = consumer.assignment()
        usable = {
            tp: (0 if offset is None or offset < 0 else offset) for tp, offset in partitions.items() if tp in assigned
        }
        self.seek_epochs.sought(usable)  # faust's _seek_wait seeks them all before its first await
        return await super()._seek_wait(consumer, usable)
