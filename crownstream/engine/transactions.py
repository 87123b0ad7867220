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

UPSTREAM.md rows F1 (``send``, ``send_batch``), F2 and F3 (``commit`` drains the producer buffer under the
commit gate), F4 (``_reopen_ended_transactions``) and F5 (``on_rebalance``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from aiokafka.errors import IllegalOperation
from aiokafka.structs import TopicPartition
from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import Producer
from faust.types import TP, EventT, HeadersArg, RecordMetadata

from crownstream.engine.commit_gate import input_transactional_id
from crownstream.engine.errors import NoEventBeingProcessed, NoTransactionalProducer
from crownstream.engine.producer import usable
from crownstream.engine.state_repair import repair_for


class InputPartitionTransactionManager(TransactionManager):
    producer: Producer  # the transport's (CrownstreamTransport.Producer): faust's aiokafka producer, subclassed

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
        event = current_event()
        if transactional_id is None and event is not None:
            transactional_id = self._input_transactional_id(event)
            # None lets the producer's partitioner choose by key, with its own metadata.
            dest = self.consumer.key_partition(topic, key, partition)
            return await self.producer.send(
                topic, key, value, dest, timestamp, headers, transactional_id=transactional_id
            )
        return await super().send(topic, key, value, partition, timestamp, headers, transactional_id=transactional_id)

    async def send_batch(
        self,
        topic: str,
        partition: int,
        records: list[tuple[bytes | None, bytes | None]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any] | None:
        """All of one event's outputs for one partition, in the input partition's transaction, appended to the
        producer's open record batch for that partition.

        An event's outputs (its ranking changes, a tournament's final placements and payouts) share a key, so
        they go to one partition. They are appended to the transactional producer's accumulator as
        ``AIOKafkaProducer.send`` does it (the same size check, then ``MessageAccumulator.add_message``: an append
        when the open batch has room), but with the topic's metadata checked once for all of them, not per
        record (``send`` builds the set of the topic's partitions for each record, ~9 % of the standings worker);
        Faust's per-record send path (~50 µs a record) is skipped altogether. Not with
        ``AIOKafkaProducer.send_batch``: it queues a batch of its own only once the partition's previous batch
        has been drained into a produce request, and a transactional producer has one request in flight per
        broker — every event then waited a broker round trip (the standings agent sat idle over half the time
        at ~4 ms a lobby). Delivery is not awaited here: a record that fails fails its transaction, and the
        commit that would carry the event's offset raises instead (the same as Faust's buffered table writes).
        ``headers`` go on every record (an event's outputs share its trace context).
        Returns the delivery future of the last record (None for no records).
        """
        event = current_event()
        if event is None:
            raise NoEventBeingProcessed("send_batch sends the outputs of the event being processed; there is none")
        tid = self._input_transactional_id(event)
        repair_for(self.app).sent(tid)  # not through Producer.send, which tracks the others
        producer = self.producer._transaction_producers.get(tid)
        if producer is None:
            raise NoTransactionalProducer(f"no transactional producer for {tid}: the partition is not active here")
        last: asyncio.Future[Any] | None = None
        async with self.producer._trn_locks[tid]:
            if not records:
                return None
            if not producer._txn_manager.is_in_transaction():
                raise IllegalOperation(f"{tid} is not in a transaction: its outputs cannot be sent")
            await producer.client._wait_on_metadata(topic)
            append = producer._message_accumulator.add_message
            tp = TopicPartition(topic, partition)
            timeout = producer._request_timeout_ms / 1000
            record_headers = headers or []
            for key, value in records:
                key_bytes, value_bytes = producer._serialize(key, value, record_headers)  # raises if oversize
                last = await append(tp, key_bytes, value_bytes, timeout, headers=record_headers)
        return last

    def _input_transactional_id(self, event: EventT[Any]) -> str:
        return input_transactional_id(self.app, event.message.tp)

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Drain buffered table writes into their transactions, then commit the input offsets.

        Table updates reach the changelog through Faust's producer buffer (``send_soon``), drained by a
        background task. faust-streaming commits offsets without draining it, so an offset can commit in
        one transaction while the state change it caused is sent in the next one — which a crash aborts:
        after a kill -9 the new owner resumes *after* events whose effects it never sees. Draining first
        puts every change of an acknowledged event in the same transaction as its offset.

        Called under the commit gate of every transaction it commits (``_Consumer.force_commit``, which holds it
        from before the offsets were read), so no transaction ends between two effects of one event, nor before an
        event whose effects it holds has its offset in it.
        """
        await self.app.producer.flush()
        await self._reopen_ended_transactions(offsets)
        return await super().commit(offsets, start_new_transaction=start_new_transaction)

    async def _reopen_ended_transactions(self, offsets: Iterable[TP]) -> None:
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
            if not usable(producer):  # fenced or failed: its commit is lost (producer._end_transaction), not begun
                continue
            async with self.producer._trn_locks[tid]:
                if not producer._txn_manager.is_in_transaction():
                    await producer.begin_transaction()

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP]) -> None:
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
        # see crownstream/engine/state_repair.py) is deleted here and restored from the committed changelog.
        repair_for(self.app).wipe_corrupt()
        for tid in sorted(active):
            await self.producer.maybe_begin_transaction(tid)
