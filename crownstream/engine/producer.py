"""The worker's producer: tells the state repair (crownstream/engine/state_repair.py, UPSTREAM.md F15) which
transactions hold sends and which of those ended without a commit, and drains its buffer of table writes before
a commit (crownstream/engine/producer_buffer.py, UPSTREAM.md F2). Installed as ``transport.CrownstreamTransport
.Producer`` (UPSTREAM.md W).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.transport.drivers.aiokafka import Producer
from faust.types import TP, HeadersArg, RecordMetadata

from crownstream.engine.coordinator_lookup import tolerate_disconnects
from crownstream.engine.errors import KAFKA_FAILURES
from crownstream.engine.producer_buffer import DrainingProducerBuffer
from crownstream.engine.state_repair import repair_for

log = logging.getLogger(__name__)


class _StateTrackingProducer(Producer):
    """Faust's producer, telling crownstream/engine/state_repair.py which transactions hold sends (every send with a
    transactional id passes here: the agents' outputs and the changelog writes drained from the producer
    buffer) and which of those ended without a commit — their partition's local table state is then ahead of
    the committed changelog. A corrupt partition commits nothing more until the next rebalance has wiped and
    restored it: committing its later offsets would skip, for good, the events whose writes were aborted.

    Its buffer (table writes) is a DrainingProducerBuffer: faust's flush returns with writes still queued."""

    buffer: DrainingProducerBuffer  # set in __init__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        buffer = DrainingProducerBuffer(loop=self.loop, beacon=self.beacon)
        upstream = self.buffer  # the ProducerBuffer faust made, replaced here
        buffer.app = upstream.app
        buffer.threaded_producer = getattr(upstream, "threaded_producer", None)
        self.buffer = buffer

    def _new_producer(self, transactional_id: str | None = None) -> AIOKafkaProducer:
        return tolerate_disconnects(super()._new_producer(transactional_id))

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: HeadersArg | None,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[RecordMetadata]:
        if transactional_id:
            repair_for(self.app).sent(transactional_id)  # before: a failed send leaves the transaction doomed too
        return await super().send(topic, key, value, partition, timestamp, headers, transactional_id=transactional_id)

    async def commit_transactions(
        self,
        tid_to_offset_map: Mapping[str, Mapping[TP, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        """Each input partition's transaction ends on its own producer, so they end side by side: faust ended them
        one after another, three broker round trips each (offsets, end, begin), while the commit gate held every
        one of those partitions' events waiting — a commit of 8 partitions cost 24 round trips of stalled
        processing, which made a short commit interval expensive. A failure of one does not stop the others;
        the first is raised once all have ended."""
        repair = repair_for(self.app)
        abort_now = repair.take_fault(tid_to_offset_map)
        ended = await asyncio.gather(
            *(
                self._end_transaction(tid, offsets, group_id, start_new_transaction, abort_now)
                for tid, offsets in tid_to_offset_map.items()
            ),
            return_exceptions=True,
        )
        newly_corrupt = any(outcome is True for outcome in ended)
        if newly_corrupt and start_new_transaction:  # not while giving partitions up: that is a rebalance
            await repair.request_rebalance()
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _end_transaction(
        self, tid: str, offsets: Mapping[TP, int], group_id: str, start_new_transaction: bool, abort_now: bool
    ) -> bool:
        """Commit (or, for a doomed one, abort) one transaction; returns whether its partition needs the rebalance
        that gives it a fresh producer and, if it became corrupt, restores its state.

        A producer that can no longer end a transaction — fenced by the member that took its partition after this
        worker missed its session timeout, or failed for good — loses its transaction instead of crashing the
        worker: Faust crashes the app on ProducerFenced, and an aiokafka state assertion on the revocation's
        commit stopped the worker in the operations scenario. Kafka Streams treats both as "task migrated": close
        the task dirty, rejoin. So does this: the offsets are not committed (the partition's events are read
        again by whoever owns it), a partition whose transaction held sends is marked corrupt (its local state is
        wiped and restored), and the rebalance requested after the commit replaces the producer."""
        repair = repair_for(self.app)
        producer = self._transaction_producers.get(tid)
        if producer is None:
            # Fenced earlier (faust dropped the producer): the sends it held are gone with its transaction.
            return repair.ended_without_commit(tid, "fenced", "no transactional producer at commit")
        if not usable(producer):
            return self._lost(tid, offsets, "producer unusable (fenced or failed)")
        try:
            if (abort_now and tid in repair.dirty) or repair.is_corrupt(tid):
                cause = "aborted" if abort_now else "corrupt"
                await self.abort_transaction(tid)  # marks it corrupt if it held sends
                if start_new_transaction:
                    await self.begin_transaction(tid)
                log.warning(
                    "transaction %s aborted instead of committing offsets %s (%s)",
                    tid,
                    {tp.partition: offset for tp, offset in offsets.items()},
                    cause,
                )
                return True
            await super().commit_transactions({tid: offsets}, group_id, start_new_transaction)
        except KAFKA_FAILURES as exc:
            return self._lost(tid, offsets, repr(exc))
        except BaseException as exc:
            repair.ended_without_commit(tid, "commit_failed", repr(exc))
            raise
        repair.committed(tid)
        return False

    def _lost(self, tid: str, offsets: Mapping[TP, int], detail: str) -> bool:
        repair_for(self.app).ended_without_commit(tid, "commit_failed", detail)
        log.warning(
            "transaction %s could not end (%s): offsets %s not committed; its partition is read again after "
            "the rebalance that replaces its producer",
            tid,
            detail,
            {tp.partition: offset for tp, offset in offsets.items()},
        )
        return True

    async def abort_transaction(self, transactional_id: str) -> None:
        repair_for(self.app).ended_without_commit(transactional_id, "aborted", "transaction aborted")
        await super().abort_transaction(transactional_id)

    async def stop_transaction(self, transactional_id: str) -> None:
        if transactional_id in self._transaction_producers:
            # aiokafka's stop leaves the transaction open; the next holder of the id aborts it.
            repair_for(self.app).ended_without_commit(
                transactional_id, "stopped", "producer stopped with its transaction open"
            )
        await super().stop_transaction(transactional_id)


def usable(producer: AIOKafkaProducer) -> bool:
    """Whether a transactional producer can still end a transaction: not in aiokafka's fatal state (fenced, or a
    sequence or authorization error) and its sender routine still running."""
    if producer._txn_manager is not None and producer._txn_manager.is_fatal_error():
        return False
    task = producer._sender.sender_task
    return task is None or not task.done()
