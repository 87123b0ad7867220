"""The worker's consumer: drops records fetched before their partition's last seek (UPSTREAM.md F8), releases a
crashed agent's commit-gate holds before faust commits from its task (F3), holds partition resumes back while
recovery completes (F12), records the offsets a record skipped without the record itself (F20), keeps revoked
partitions' acknowledged offsets until the revocation's last commit (F21), reads the offsets to commit only once the
commit gate is held (F24), wakes its fetch loop when partitions resume (F25), and runs
``consumer_thread._LsoFromBrokerConsumerThread`` (W). Installed as ``transport.CrownstreamTransport.Consumer``
(UPSTREAM.md W).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

from faust.transport.consumer import CONSUMER_PARTITIONS_REVOKED, RecordMap
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP, Message
from faust.types.transports import TPorTopicSet
from faust.utils.tracing import traced_from_parent_span
from mode import Service

from crownstream.engine.commit_gate import gate_for, input_transactional_id
from crownstream.engine.consumer_thread import _LsoFromBrokerConsumerThread
from crownstream.engine.state import state_of
from crownstream.metrics import STALE_RECORDS


class _Consumer(Consumer):
    """Records fetched before their partition was last sought are dropped wherever they are iterated
    (crownstream/engine/seek_epochs.py) and read again from the position the seek set.

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

    #: The seek epochs of the batch being iterated (crownstream/engine/seek_epochs.py).
    _batch_epochs: dict[tuple[str, int], int] | None = None
    #: Partition resumes held back while recovery completes (RestoringRecovery.on_recovery_completed).
    _deferred_resumes: list[set[TP]] | None = None
    #: Made on first use, in the event loop (``_resumed``).
    _resumed_event: asyncio.Event | None = None
    _thread: _LsoFromBrokerConsumerThread  # made by _new_consumer_thread

    def defer_resumes(self) -> None:
        """Hold back ``resume_partitions`` calls until ``release_resumes``."""
        self._deferred_resumes = []

    def release_resumes(self) -> list[set[TP]]:
        """Stop holding resumes back; returns the partition sets whose resume was held, for the caller to
        resume (or not, if the group's generation changed meanwhile)."""
        deferred, self._deferred_resumes = self._deferred_resumes or [], None
        return deferred

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        if self._deferred_resumes is not None:
            self._deferred_resumes.append(set(tps))
            return
        super().resume_partitions(tps)
        self._resumed().set()

    def _resumed(self) -> asyncio.Event:
        """Set by every resume: wakes a fetch loop that found every partition paused (``_wait_next_records``)."""
        if self._resumed_event is None:
            self._resumed_event = asyncio.Event()
        return self._resumed_event

    @Service.transitions_to(CONSUMER_PARTITIONS_REVOKED)
    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Faust's, with the revoked partitions' acknowledged offsets (and gaps, read and committed offsets) dropped
        only *after* the app's revocation handler, not before it.

        That handler waits for the streams and commits (``App._on_partitions_revoked`` -> ``wait_empty`` ->
        ``commit_and_end_transactions``): the last commit of this generation, made for the partitions being given
        up. Faust emptied their acknowledged offsets first, so that commit had nothing to commit for them, yet it
        committed their transactions — with the outputs of every event processed since the previous commit in
        them — whenever another partition of the same transactional id had an offset to commit. The next owner read
        from the previous offset and emitted those outputs again: the delivery requests committed twice upstream
        at the rebalances of the operations scenario, most under load (#15, UPSTREAM.md F21)."""
        span = self.app._start_span_from_rebalancing("on_partitions_revoked")
        T = traced_from_parent_span(span)
        with span:
            if self._active_partitions is not None:
                self._active_partitions.difference_update(revoked)
            self._paused_partitions.difference_update(revoked)
            try:
                await T(self._on_partitions_revoked, partitions=revoked)(revoked)
            finally:
                for tp in revoked:
                    self._gap.pop(tp, None)
                    self._acked.pop(tp, None)
                    self._acked_index.pop(tp, None)
                    self._read_offset.pop(tp, None)
                    self._committed_offset.pop(tp, None)

    async def force_commit(self, topics: TPorTopicSet | None = None, start_new_transaction: bool = True) -> bool:
        """Faust's, with the offsets to commit read only once the commit gate of every transaction to commit is held.

        Faust reads the acknowledged offsets first (``_filter_committable_offsets``) and commits the transactions
        after; the gate (``InputPartitionTransactionManager.commit`` entered it there) waited in between for the
        batches still being processed. Their outputs went into the transaction that commit ended, their offsets,
        acknowledged while it waited, into the next: traced in an operations run, a ``notification-users``
        partition's commit read offset 47 at a commit tick, waited for the batch of offsets 50-63, and committed the
        batch's delivery requests with offset 47. Before the next commit the broker restarted, that commit was lost,
        and the new owner read 50-63 again and committed their requests a second time (#15, UPSTREAM.md F24). Under
        the gate no event of these transactions is being processed, so what they hold and the offsets read agree.

        The gates taken are those of the transactions with acknowledged offsets when the commit starts; a partition
        of another transaction whose first acknowledgement comes while they are being taken waits for the next
        commit, rather than being committed through a gate not held."""
        if not self.in_transaction:
            return bool(await super().force_commit(topics, start_new_transaction=start_new_transaction))
        tids = {
            input_transactional_id(self.app, tp) for tp in self._filter_tps_with_pending_acks(topics) if self._acked[tp]
        }
        if not tids:
            return False
        async with gate_for(self.app).committing(tids):
            held = {
                tp for tp in self._filter_tps_with_pending_acks(topics) if input_transactional_id(self.app, tp) in tids
            }
            return bool(await super().force_commit(held, start_new_transaction=start_new_transaction))

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """The offsets between the last record read and ``offset_to``, the record just read, as a gap: the offsets
        no record will come for (under read_committed, a transaction marker or an aborted record), which Faust
        counts as acknowledged when it computes what to commit.

        Faust's ``_drain_messages`` passes the record's own offset as ``offset_to`` and ``_add_gap`` includes it
        (``addi(offset_from, offset_to + 1)``), so that offset is acknowledged twice: once as part of the gap and
        once when the agent acknowledges the record. ``_new_offset`` commits the first run of consecutive
        acknowledged offsets, and the duplicate ends that run: every gap (one after every transaction of the
        producer upstream) held the committed offset back for a commit interval, while the outputs of what was
        processed after it committed in every transaction meanwhile. A worker taking over after a rebalance read
        from that stale offset and emitted those outputs again: in the operations scenario's catch-up after the
        broker restart, where every internal topic is a series of small transactions, the committed offset fell tens
        of records behind per partition, and hundreds to thousands of delivery requests were committed twice (#15).
        """
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _new_consumer_thread(self) -> _LsoFromBrokerConsumerThread:
        return _LsoFromBrokerConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_task_error(self, exc: BaseException) -> None:
        # Faust commits from the failed agent's own task; what it held in the commit gate is released first.
        gate_for(self.app).release_task(asyncio.current_task())
        await super().on_task_error(exc)

    async def _wait_next_records(self, timeout: float) -> tuple[RecordMap | None, set[TP] | None]:
        """Faust's, without the two ways it let partitions resumed after a rebalance wait up to a second (F25).

        Faust's fetch loop asks for records with a 1-s timeout, for the partitions active when it asked, and sleeps
        a whole second when none is active — which is the case throughout a rebalance's recovery, as every
        partition is paused until it completes. The partitions resumed then waited out that sleep, or a wait for
        records of the partitions active before (standby changelogs, say): about a second of every rebalance's
        pause, from "Worker ready" to the first event (1.00 s in every pause of a bench run: the flow resumes before
        the stream partitions do, so the first wait after a rebalance was for the standby changelogs alone). Here a
        loop with nothing active waits for the next resume instead, and a wait for records lasts at most the broker's
        long poll (``CROWNSTREAM_CONSUMER_FETCH_MAX_WAIT_MS``), after which the active partitions are read again."""
        if not self.app.client_only:
            if not self.flow_active:  # a rebalance: Faust's own wait, before the active partitions are read
                await self.wait(self.can_resume_flow)  # type: ignore[arg-type]  # as Faust's: an asyncio.Event
            resumed = self._resumed()
            resumed.clear()
            if not self._get_active_partitions():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(resumed.wait(), timeout)
                return {}, set()
            timeout = min(timeout, state_of(self.app).settings.consumer_fetch_max_wait_ms / 1000)
        records, active_partitions = await super()._wait_next_records(timeout)
        self._batch_epochs = getattr(records, "seek_epochs", None)
        return records, active_partitions

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        changelogs = self.app.tables.changelog_topics
        epochs = self._thread.seek_epochs
        async for tp, message in super().getmany(timeout):
            if epochs.is_stale(self._batch_epochs, tp):
                STALE_RECORDS.labels("changelog" if tp.topic in changelogs else "stream").inc()
                continue
            yield tp, message
