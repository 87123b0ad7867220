"""Table recovery that cannot declare a partition restored before its last committed change is applied.

Faust restores an active table partition through the worker's one consumer: changelog records pass the
fetcher, the consumer's read-offset filter, the conductor and a flow-controlled queue before recovery
applies them, and every rebalance step (stop flow, clear queues, seek, resume) races with that path. Under
exactly-once it then cannot tell when it is done: the changelog's last offset is a transaction marker that
is never delivered, so it waits for ten quiet seconds and, if the consumer's position has passed the end,
declares the partition recovered whether or not its records arrived. A soak run traced a partition
"recovered" from offset 0 with none of its records applied — that tournament answered 404 on its new
owner. Every rebalance also paid those ten seconds.

Kafka Streams restores with a consumer of its own, and so does this:

- ``RestoringRecovery`` reads every active changelog partition from the last offset its local store holds
  to the partition's last stable offset with a dedicated ``read_committed`` consumer (no group, nothing
  shared with the streams), applies each batch to the table's store, and only then lets Faust go on —
  with the highwater set to the last change applied, so Faust's own restore path has nothing left to do.
  A rebalance that interrupts it keeps what was applied; the next round resumes from there.
- Standby partitions stay on Faust's path, with one fix: Faust clears the changelog queue when it resumes
  the streams after recovery, dropping standby records already fetched (the consumer's position is past
  them, so they never come again: a gap the standby carries into a failover). ``ChangelogQueue`` keeps its
  events through that one clear; every other clear (revocation, the start of a recovery round, when the
  partitions are sought again anyway) still happens (``table_manager.ChangelogQueue``).

UPSTREAM.md rows F11 (``RestoringRecovery``: the restore consumer) and F12 (``on_recovery_completed``). The table
manager that installs it, F13 and F14 are in ``table_manager.py``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.recovery import Recovery
from faust.types import TP, EventT

from crownstream.engine.state import state_of
from crownstream.engine.state_repair import wipe_partition
from crownstream.metrics import TABLE_RESTORE_SECONDS, TABLE_RESTORED_RECORDS

if TYPE_CHECKING:  # table_manager imports this module
    from crownstream.engine.consumer import _Consumer
    from crownstream.engine.table_manager import ChangelogQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChangelogRecord:
    """What a Faust store's ``apply_changelog_batch`` reads of a changelog event: ``event.message``'s topic
    partition, offset, key and value (raw bytes; None deletes the key)."""

    tp: TP
    offset: int
    key: bytes | None  # as aiokafka returns it; Faust's changelog records always have one
    value: bytes | None

    @property
    def partition(self) -> int:
        return self.tp.partition

    @property
    def message(self) -> ChangelogRecord:
        return self


@dataclass
class RestorePlan:
    """Where each partition's restore starts (the offset after the last change the store holds) and where
    the committed changelog ends (its last stable offset, read_committed)."""

    starts: dict[TP, int]
    ends: dict[TP, int]

    def pending(self) -> dict[TP, int]:
        return {tp: start for tp, start in self.starts.items() if start < self.ends[tp]}


def plan_restore(applied: dict[TP, int | None], ends: dict[TP, int]) -> tuple[RestorePlan, set[TP]]:
    """Start offsets for a restore, and the partitions whose local state claims changes past the committed
    end (a store ahead of its changelog: those restart from the beginning once wiped)."""
    starts, ahead = {}, set()
    for tp, end in ends.items():
        last = applied.get(tp)
        last = -1 if last is None else last
        if last >= end:
            ahead.add(tp)
            last = -1
        starts[tp] = last + 1
    return RestorePlan(starts, dict(ends)), ahead


class RestoringRecovery(Recovery):
    """Faust's Recovery with active partitions restored by a consumer of their own (see the module doc)."""

    #: Records per getmany of the restore consumer: a batch is applied to RocksDB in one write batch.
    restore_batch_records = 10_000

    def __init__(self, app: Any, tables: Any, **kwargs: Any) -> None:
        super().__init__(app, tables, **kwargs)
        self._settings = state_of(app).settings
        self._restore: AIOKafkaConsumer | None = None

    async def _restore_consumer(self) -> AIOKafkaConsumer:
        """The restore consumer, started on the first restore and kept for the next ones: starting one (bootstrap,
        metadata of the changelog topics) was ~1.5 s of every rebalance's pause on a loaded machine. Between
        restores its partitions are paused, so it fetches nothing."""
        if self._restore is None:
            restore = AIOKafkaConsumer(
                bootstrap_servers=self._settings.kafka_bootstrap,
                client_id=f"{self.app.conf.id}-restore",
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
            )
            await restore.start()
            self._restore = restore
        return self._restore

    async def _drop_restore_consumer(self) -> None:
        restore, self._restore = self._restore, None
        if restore is not None:
            await restore.stop()

    async def on_stop(self) -> None:
        await super().on_stop()
        await self._drop_restore_consumer()

    async def _wait(self, coro: Any, timeout: Any = None) -> None:
        # Faust bounds each recovery step by broker_request_timeout and, when it expires, stops recovering for
        # good (the worker never becomes ready). Restoring a large table legitimately takes longer; a
        # rebalance or a stop still interrupts it.
        if getattr(coro, "cr_code", None) is RestoringRecovery._build_highwaters.__code__:
            timeout = None
        return await super()._wait(coro, timeout)

    async def _build_highwaters(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        if title != "active" or not tps:
            return await super()._build_highwaters(consumer, tps, destination, title)
        applied = await self.restore_actives(set(tps))
        destination.clear()
        destination.update(applied)

    async def restore_actives(self, tps: set[TP]) -> dict[TP, int]:
        """Apply every committed change of ``tps`` the local stores lack. Returns, per partition, the offset
        before its committed end, which Faust then takes as both the offset read and the highwater."""
        offsets = self.active_offsets
        started = time.monotonic()
        restored = 0
        restore = await self._restore_consumer()
        try:
            kafka_tps = {tp: TopicPartition(tp.topic, tp.partition) for tp in tps}
            # Not assigned first, though that would ask for every topic's metadata in one request (1.4 s of a
            # rebalance here): assigned and paused before their ends were asked for, with the 200-ms fetch long poll,
            # the operations scenario committed 268 and 1,957 delivery requests twice upstream (2026-12-07), as
            # faster recoveries did on 2026-12-01; without both, 221, 0, 0. The repeats were traced to the offset
            # bookkeeping (UPSTREAM.md F20, F21, B1), not to recovery; assigning first again is for the rebalance bench.
            ends_by_ktp = await restore.end_offsets(list(kafka_tps.values()))
            ends = {tp: ends_by_ktp[ktp] for tp, ktp in kafka_tps.items()}
            plan, ahead = plan_restore({tp: offsets.get(tp) for tp in tps}, ends)
            for tp in sorted(ahead):
                self._discard_local_state(tp, offsets.get(tp), ends[tp])
            for tp in tps:
                offsets[tp] = plan.starts[tp] - 1
            pending = plan.pending()
            if pending:
                restore.assign([kafka_tps[tp] for tp in pending])
                for tp, start in pending.items():
                    restore.seek(kafka_tps[tp], start)
                restored = await self._read_to_end(restore, kafka_tps, pending, plan.ends)
                restore.pause(*restore.assignment())  # idle until the next restore assigns anew
        except BaseException:
            # Interrupted (a rebalance, a stop) or failed: the next restore starts from a fresh consumer.
            await self._drop_restore_consumer()
            raise
        elapsed = time.monotonic() - started
        TABLE_RESTORE_SECONDS.observe(elapsed)
        if restored:
            log.info("restored %d changelog records of %d active partitions in %.2f s", restored, len(tps), elapsed)
        # Read to the end: what lies between the last change and the end is markers and aborted records.
        for tp in tps:
            offsets[tp] = plan.ends[tp] - 1
        return {tp: offsets[tp] for tp in tps}

    async def _read_to_end(
        self,
        restore: AIOKafkaConsumer,
        kafka_tps: dict[TP, TopicPartition],
        pending: dict[TP, int],
        ends: dict[TP, int],
    ) -> int:
        offsets = self.active_offsets
        remaining = set(pending)
        restored = 0
        last_report = time.monotonic()
        while remaining:
            batch = await restore.getmany(
                *(kafka_tps[tp] for tp in remaining), timeout_ms=100, max_records=self.restore_batch_records
            )
            for ktp, records in batch.items():
                if not records:
                    continue
                tp = TP(ktp.topic, ktp.partition)
                table = self.tp_to_table[tp]
                # Faust types the batch as events but reads only ``event.message``'s tp, offset, key and value.
                changes = [ChangelogRecord(tp, r.offset, r.key, r.value) for r in records]
                table.apply_changelog_batch(cast(list[EventT[Any]], changes))
                # Only after the store holds the batch: an interrupted restore resumes after what it applied.
                offsets[tp] = records[-1].offset
                restored += len(records)
                TABLE_RESTORED_RECORDS.labels(table.name).inc(len(records))
            for tp in list(remaining):
                # The position passes transaction markers and aborted records too, which are never returned.
                if await restore.position(kafka_tps[tp]) >= ends[tp]:
                    remaining.discard(tp)
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                log.info("restoring tables: %d records applied, %d partitions to go", restored, len(remaining))
        return restored

    def _discard_local_state(self, tp: TP, applied: int | None, end: int) -> None:
        table = self.tp_to_table[tp]
        log.warning(
            "local state of %s partition %d holds changelog offset %s, past the committed end %d: "
            "deleting it and restoring the partition from the changelog",
            table.name,
            tp.partition,
            applied,
            end,
        )
        wipe_partition(self.app, table, tp.partition)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's, with the stream partitions resumed only at its end.

        Faust resumes the stream partitions, seeks them to their committed offsets with the flow already on
        (recovery turned it on for the changelogs), and then resumes flow control, which clears every stream
        queue. Records fetched from the sought positions in between reach the agents' queues, their read
        offsets recorded, and are then cleared: lost, since the position has moved past them. (It fits a CI
        run whose owner never applied a tournament's events produced just then, and answered 404 for it until
        the test gave up; not traced record by record.) Deferred to the end, the resume lets nothing of the
        streams be fetched before their seek is done and their queues are cleared; the changelogs, standbys
        included, flow throughout. If the generation changed meanwhile, the next round resumes them."""
        # This recovery is built only by RestoringTableManager, whose queue is a ChangelogQueue, and install()
        # makes the worker's consumer a _Consumer.
        queue = cast("ChangelogQueue", self.tables.changelog_queue)
        queue.keep_through_clear = True
        consumer = cast("_Consumer", self.app.consumer)
        consumer.defer_resumes()
        try:
            await super().on_recovery_completed(generation_id)
        finally:
            deferred = consumer.release_resumes()
            queue.keep_through_clear = False
        if self.app.consumer_generation_id == generation_id:
            for tps in deferred:
                consumer.resume_partitions(tps)
