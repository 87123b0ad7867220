"""Exactly-once done right for outputs: every record an agent sends while processing an input event goes
into the transaction of that event's *input* partition.

faust-streaming's ``TransactionManager.send`` picks the transactional producer from the *destination*
topic and partition of the record being sent. That is only correct when the output topic happens to be
co-partitioned with, and grouped like, the input. Otherwise an output lands in another partition's
transaction — committed or aborted independently of the input offset that produced it — or in no
transaction at all when the consumer has no metadata for the output topic. Those are the duplicates and
"sends outside the transaction" reported in faust-streaming issues #323, #517 and #177.

Kafka Streams' rule is one transaction per input partition (task), and so is ours: the transactional id
is derived from the TP of ``faust.current_event()``; the destination partition is still chosen by the key.
Sends made outside event processing (the producer buffer's table writes) keep Faust's routing, which
for changelogs is the input partition already; ``commit`` drains them first (see below).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import TopicPartition
from faust.streams import current_event
from faust.exceptions import ProducerSendError
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Producer, Transport

from crownstream.commit_gate import gate_for, input_transactional_id
from crownstream.metrics import STALE_RECORDS
from crownstream.producer_buffer import DrainingProducerBuffer
from crownstream.seek_epochs import SeekEpochs, StampedRecords
from crownstream.state_repair import repair_for

log = logging.getLogger(__name__)


class InputPartitionTransactionManager(TransactionManager):
    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   timestamp: float | None, headers: Any, *, transactional_id: str | None = None):
        event = current_event()
        if transactional_id is None and event is not None:
            transactional_id = self._input_transactional_id(event)
            # None lets the producer's partitioner choose by key, with its own metadata.
            dest = self.consumer.key_partition(topic, key, partition)
            return await self.producer.send(topic, key, value, dest, timestamp, headers,
                                            transactional_id=transactional_id)
        return await super().send(topic, key, value, partition, timestamp, headers,
                                  transactional_id=transactional_id)

    async def send_batch(self, topic: str, partition: int, records: list[tuple[bytes | None, bytes]]) -> None:
        """All of one event's outputs for one partition as one record batch, in the input partition's transaction.

        An event's outputs (its ranking changes, a tournament's final placements and payouts) share a key, so
        they go to one partition; handing them to the transactional producer as a single batch costs one
        append instead of a trip through Faust's per-record send path each, which was two thirds of the
        standings agent's time per lobby result in a 1000-team stage."""
        event = current_event()
        if event is None:
            raise RuntimeError("send_batch sends the outputs of the event being processed; there is none")
        tid = self._input_transactional_id(event)
        repair_for(self.app).sent(tid)  # not through Producer.send, which tracks the others
        producer = self.producer._transaction_producers.get(tid)
        if producer is None:
            raise ProducerSendError(f"no transactional producer for {tid}: the partition is not active here")
        async with self.producer._trn_locks[tid]:
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                    await producer.send_batch(batch, topic, partition=partition)
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ProducerSendError(f"a {len(value)}-byte record does not fit in an empty batch")
            if batch.record_count():
                await producer.send_batch(batch, topic, partition=partition)

    def _input_transactional_id(self, event) -> str:
        return input_transactional_id(self.app, event.message.tp)

    async def commit(self, offsets, start_new_transaction: bool = True) -> bool:
        """Drain buffered table writes into their transactions, then commit the input offsets.

        Table updates reach the changelog through Faust's producer buffer (``send_soon``), drained by a
        background task. faust-streaming commits offsets without draining it, so an offset can commit in
        one transaction while the state change it caused is sent in the next one — which a crash aborts:
        after a kill -9 the new owner resumes *after* events whose effects it never sees. Draining first
        puts every change of an acknowledged event in the same transaction as its offset.

        The commit gate (crownstream/commit_gate.py) first waits for the events being processed in these
        partitions, so no transaction ends between two effects of one event.
        """
        async with gate_for(self.app).committing(input_transactional_id(self.app, tp) for tp in offsets):
            await self.app.producer.flush()
            await self._reopen_ended_transactions(offsets)
            return await super().commit(offsets, start_new_transaction=start_new_transaction)

    async def _reopen_ended_transactions(self, offsets) -> None:
        """Begin a transaction for every producer about to commit offsets outside one.

        faust ends the transactions (``commit_and_end_transactions``: commit with start_new_transaction=False)
        as soon as the streams are drained — on SIGTERM in ``App._stop_consumer``, *before* it stops the tables
        and the consumer — but the consumer's commit timer keeps running, and the consumer's own ``on_stop``
        commits again. Offsets acknowledged after the "final" commit then met a producer between transactions:
        ``IllegalOperation('Not in the middle of a transaction')`` crashed the consumer and the worker exited 1
        on every SIGTERM. Those offsets belong to events whose outputs are already sent (in the ended
        transaction, or a later one: nothing can be sent outside a transaction), so they are committed in a
        transaction of their own; the last commit before the consumer leaves the group ends it again."""
        tids = {input_transactional_id(self.app, tp) for tp in offsets}
        for tid in sorted(tids):
            producer = self.producer._transaction_producers.get(tid)
            if producer is None:  # not ours (any more): faust's commit warns and skips it
                continue
            async with self.producer._trn_locks[tid]:
                if not producer._txn_manager.is_in_transaction():
                    await producer.begin_transaction()

    async def on_rebalance(self, assigned, revoked, newly_assigned) -> None:
        """After every rebalance: no producer for a partition this worker does not process, and a *fresh*
        producer (re-initialised under its transactional id, in a new transaction) for every one it does.

        faust-streaming's own version gets three things wrong, each seen crashing or silently breaking workers
        in the two-worker kill -9 test:
        - it maps revoked partitions to transactional ids through a filter that drops partitions now held as
          standbys, so the producer of a partition that moved to another worker (and stayed here as a
          standby) is never stopped: a zombie under the new owner's transactional id;
        - a partition kept across the rebalance keeps a producer that may be unusable: on revoke faust commits
          with start_new_transaction=False (Consumer.commit_and_end_transactions), leaving it outside any
          transaction ("Can't send messages while not in transaction" — inside the producer buffer, where the
          table writes are lost), and a worker that missed heartbeats under load and re-joined may get its
          old partitions back after another worker held them and fenced its producers (ProducerFenced);
        - it re-begins transactions that are already open.
        Kafka Streams re-initialises a task's producer whenever the task is assigned, and so do we: init
        fences any other holder of the id and aborts its open transaction. Nothing committable is lost —
        faust commits every acknowledged offset before it gives partitions up (stream_wait_empty) — and
        anything not committed is re-read from the committed offset after recovery.
        """
        active = self._tps_to_transactional_ids(assigned)
        running = self.producer._transaction_producers
        for tid in sorted(set(running)):
            await self.producer.stop_transaction(tid)
        # Before tables.on_rebalance and its recovery: a partition whose writes were just aborted (or earlier,
        # see crownstream/state_repair.py) is deleted here and restored from the committed changelog.
        repair_for(self.app).wipe_corrupt()
        for tid in sorted(active):
            await self.producer.maybe_begin_transaction(tid)


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
        #: Bumped here, in the consumer's thread, as each partition is sought (crownstream/seek_epochs.py).
        self.seek_epochs = SeekEpochs()

    async def _highwaters(self, partitions):
        return await self._ensure_consumer().end_offsets(list(partitions))

    async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        stamped = StampedRecords(records)
        stamped.seek_epochs = self.seek_epochs.stamp(records)
        return stamped

    async def seek_to_committed(self):
        """After every rebalance's recovery Faust seeks the stream partitions back to their committed offsets, so
        that records fetched during the rebalance — which the streams skip as belonging to an old generation or
        arriving while flow control was suspended — are read again. aiokafka's ``seek_to_committed`` only seeks
        a partition that *has* a committed offset greater than 0: a partition nobody ever committed (its owner
        was killed before its first commit, or its first events came after the kill) keeps the position the
        fetcher reached, and the skipped records are lost for good — the survivor of a kill -9 reads to the end
        of the partition and applies nothing. Such a partition is sought to its beginning, which is what
        auto_offset_reset=earliest promises and what exactly-once needs (nothing of it was ever committed).
        Changelog partitions are left alone: recovery positions those itself."""
        return await self.call_thread(self._seek_streams_to_committed, self._ensure_consumer())

    async def _seek_streams_to_committed(self, consumer):
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
        committed: dict = {tp: None for tp in consumer.assignment() if tp.topic in changelogs}
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

    def verify_event_path(self, now: float, tp) -> None:
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

    async def _seek_wait(self, consumer, partitions):
        """Recovery seeks standby changelog partitions to offsets it builds per recovery round. When a second
        rebalance interrupts a round (a worker joins or dies while another one recovers — routine when a
        group scales), faust-streaming logs "Error in recovery … is not assigned", still goes on to "Starting
        standby partitions", and seeks partitions whose offset was never built (``None``) or that are no
        longer assigned — aiokafka raises and the whole worker crashes. An unknown offset means "read the
        changelog from its start" (as -1 does for faust), and a partition no longer assigned is skipped: the
        next rebalance starts a new recovery round for whatever this worker holds then."""
        assigned = consumer.assignment()
        usable = {tp: (0 if offset is None or offset < 0 else offset)
                  for tp, offset in partitions.items() if tp in assigned}
        self.seek_epochs.sought(usable)  # faust's _seek_wait seeks them all before its first await
        return await super()._seek_wait(consumer, usable)


class _StateTrackingProducer(Producer):
    """Faust's producer, telling crownstream/state_repair.py which transactions hold sends (every send with a
    transactional id passes here: the agents' outputs and the changelog writes drained from the producer
    buffer) and which of those ended without a commit — their partition's local table state is then ahead of
    the committed changelog. A corrupt partition commits nothing more until the next rebalance has wiped and
    restored it: committing its later offsets would skip, for good, the events whose writes were aborted.

    Its buffer (table writes) is a DrainingProducerBuffer: faust's flush returns with writes still queued."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        buffer = DrainingProducerBuffer(loop=self.loop, beacon=self.beacon)
        buffer.app = self.buffer.app
        buffer.threaded_producer = getattr(self.buffer, "threaded_producer", None)
        self.buffer = buffer

    async def send(self, topic, key, value, partition, timestamp, headers, *, transactional_id=None):
        if transactional_id:
            repair_for(self.app).sent(transactional_id)  # before: a failed send leaves the transaction doomed too
        return await super().send(topic, key, value, partition, timestamp, headers,
                                  transactional_id=transactional_id)

    async def commit_transactions(self, tid_to_offset_map, group_id, start_new_transaction: bool = True) -> None:
        repair = repair_for(self.app)
        abort_now = repair.take_fault(tid_to_offset_map)
        newly_corrupt = False
        for tid, offsets in tid_to_offset_map.items():
            if tid not in self._transaction_producers:
                # Fenced earlier (faust dropped the producer): the sends it held are gone with its transaction.
                newly_corrupt |= repair.ended_without_commit(tid, "fenced", "no transactional producer at commit")
                continue
            if (abort_now and tid in repair.dirty) or repair.is_corrupt(tid):
                cause = "aborted" if abort_now else "corrupt"
                await self.abort_transaction(tid)  # marks it corrupt if it held sends
                newly_corrupt = True
                if start_new_transaction:
                    await self.begin_transaction(tid)
                log.warning("transaction %s aborted instead of committing offsets %s (%s)", tid,
                            {tp.partition: offset for tp, offset in offsets.items()}, cause)
                continue
            try:
                await super().commit_transactions({tid: offsets}, group_id, start_new_transaction)
            except BaseException as exc:
                repair.ended_without_commit(tid, "commit_failed", repr(exc))
                raise
            repair.committed(tid)
        if newly_corrupt and start_new_transaction:  # not while giving partitions up: that is a rebalance
            await repair.request_rebalance()

    async def abort_transaction(self, transactional_id: str) -> None:
        repair_for(self.app).ended_without_commit(transactional_id, "aborted", "transaction aborted")
        await super().abort_transaction(transactional_id)

    async def stop_transaction(self, transactional_id: str) -> None:
        if transactional_id in self._transaction_producers:
            # aiokafka's stop leaves the transaction open; the next holder of the id aborts it.
            repair_for(self.app).ended_without_commit(transactional_id, "stopped",
                                                      "producer stopped with its transaction open")
        await super().stop_transaction(transactional_id)


class _Consumer(Consumer):
    """Records fetched before their partition was last sought are dropped wherever they are iterated
    (crownstream/seek_epochs.py) and read again from the position the seek set.

    After every rebalance's recovery Faust resumes the streams and then, with the fetcher running, asks the
    broker for the committed offsets and seeks to them (``perform_seek``). Records fetched from the old
    positions before that seek reached the agents before the committed offsets were known: a survivor of a
    kill -9 re-processed a stale copy of events its dead peer had committed, and the records after them
    (offsets 14-23 of a partition in the traced run), fetched again from the committed offset, were dropped
    by Faust as already read — two match results missing from the standings. Such a record is dropped while
    its partition's seek is pending, and after it by its seek epoch.

    Records of a partition fetched *after* its seek are the right ones, even while ``perform_seek`` still
    seeks other partitions, and are kept. This class once dropped every stream record iterated during
    ``perform_seek``; that loses, for good, the first records fetched from a freshly sought position (the
    position has moved past them and no seek brings it back). It fits a CI run whose owner never applied a
    tournament's events produced just as its recovery ended, and answered 404 for it until the test gave up.
    """

    #: The seek epochs of the batch being iterated (crownstream/seek_epochs.py).
    _batch_epochs: dict | None = None
    #: Partition resumes held back while recovery completes (RestoringRecovery.on_recovery_completed).
    _deferred_resumes: list[set] | None = None

    def defer_resumes(self) -> None:
        """Hold back ``resume_partitions`` calls until ``release_resumes``."""
        self._deferred_resumes = []

    def release_resumes(self) -> list[set]:
        """Stop holding resumes back; returns the partition sets whose resume was held, for the caller to
        resume (or not, if the group's generation changed meanwhile)."""
        deferred, self._deferred_resumes = self._deferred_resumes or [], None
        return deferred

    def resume_partitions(self, tps) -> None:
        if self._deferred_resumes is not None:
            self._deferred_resumes.append(set(tps))
            return
        super().resume_partitions(tps)

    def _new_consumer_thread(self):
        return _LsoFromBrokerConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_task_error(self, exc: BaseException) -> None:
        # Faust commits from the failed agent's own task; what it held in the commit gate is released first.
        gate_for(self.app).release_task(asyncio.current_task())
        await super().on_task_error(exc)

    async def _wait_next_records(self, timeout: float):
        records, active_partitions = await super()._wait_next_records(timeout)
        self._batch_epochs = getattr(records, "seek_epochs", None)
        return records, active_partitions

    async def getmany(self, timeout: float):
        changelogs = self.app.tables.changelog_topics
        epochs = self._thread.seek_epochs
        async for tp, message in super().getmany(timeout):
            if epochs.is_stale(self._batch_epochs, tp):
                STALE_RECORDS.labels("changelog" if tp.topic in changelogs else "stream").inc()
                continue
            yield tp, message


class CrownstreamTransport(Transport):
    TransactionManager = InputPartitionTransactionManager
    Producer = _StateTrackingProducer
    Consumer = _Consumer
