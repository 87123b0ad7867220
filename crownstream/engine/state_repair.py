"""Local table state that got ahead of the committed changelog: detected per transaction, wiped before recovery.

Faust applies a table write to the local RocksDB store at once and sends its changelog record inside the
input partition's transaction. When that transaction ends without a commit (aborted, fenced, its producer
stopped by a rebalance, a failed commit) the input offsets are not committed either, so the events are
processed again — but the local store already holds their effects, the handlers skip them as duplicates,
and their writes never reach the committed changelog: the next worker that restores the partition from it
is missing them. Kafka Streams closes such a task "dirty" and wipes its local state under exactly-once;
this does the same:

- ``sent``/``committed`` track, per transactional id (one per input partition), whether the open
  transaction holds sends since its last commit;
- ``ended_without_commit`` marks such a partition's local state corrupt;
- ``wipe_corrupt`` (called from the transaction manager's ``on_rebalance``, which Faust runs before table
  recovery) deletes that partition's store of every table, so recovery replays it from the changelog with
  read_committed — which skips the aborted records;
- a corrupt partition commits nothing until it is wiped (its later transactions are aborted too), and a
  rebalance is requested so the wipe, the restore and the rewind to the committed offsets happen at once.

UPSTREAM.md row F15 (the producer side is ``producer._StateTrackingProducer``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from crownstream.engine.state import state_of
from crownstream.metrics import TABLE_STATE_WIPES

log = logging.getLogger(__name__)


def partition_of(transactional_id: str) -> int:
    """Faust's transactional ids are ``{app id}-{topic group}-{partition}``."""
    return int(transactional_id.rsplit("-", 1)[1])


@dataclass
class StateRepair:
    app: Any
    #: Transactional ids whose open transaction holds sends made since its last commit.
    dirty: set[str] = field(default_factory=set)
    #: Transactional id -> (cause, detail) of a transaction that ended without a commit while dirty.
    corrupt: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Test hook (settings.fault_abort_after_sends): sends left before the next commit aborts instead.
    fault_sends_left: int = 0
    fault_armed: bool = False

    def sent(self, transactional_id: str) -> None:
        self.dirty.add(transactional_id)
        if self.fault_sends_left > 0:
            self.fault_sends_left -= 1
            self.fault_armed = self.fault_sends_left == 0

    def committed(self, transactional_id: str) -> None:
        self.dirty.discard(transactional_id)

    def is_corrupt(self, transactional_id: str) -> bool:
        return transactional_id in self.corrupt

    def ended_without_commit(self, transactional_id: str, cause: str, detail: str) -> bool:
        """Record that ``transactional_id``'s transaction is gone uncommitted; True if it held writes."""
        if transactional_id not in self.dirty:
            return False
        self.dirty.discard(transactional_id)
        if transactional_id not in self.corrupt:
            self.corrupt[transactional_id] = (cause, detail)
            log.warning(
                "transaction %s ended without a commit (%s: %s): the local table state of partition %d "
                "is ahead of the committed changelog and will be restored from it",
                transactional_id,
                cause,
                detail,
                partition_of(transactional_id),
            )
        return True

    def lost(self, transactional_id: str, cause: str, detail: str) -> None:
        """Events of the partition were acknowledged without taking effect (a batch Kafka failed under): corrupt
        whether or not its transaction holds sends, so that no later commit carries their offsets."""
        self.dirty.add(transactional_id)
        self.ended_without_commit(transactional_id, cause, detail)

    def take_fault(self, transactional_ids: Iterable[str]) -> bool:
        """True once, when the test hook wants this commit (of transactions holding sends) to abort instead."""
        if self.fault_armed and any(tid in self.dirty for tid in transactional_ids):
            self.fault_armed = False
            return True
        return False

    async def request_rebalance(self) -> None:
        """Have the group rebalance now: the wipe, the restore and the rewind of the input to its committed
        offsets all run in a rebalance, and until then the corrupt partition commits nothing."""
        thread = self.app.consumer._thread
        consumer = thread._ensure_consumer()
        await thread.call_thread(consumer._coordinator.request_rejoin)

    def wipe_corrupt(self) -> None:
        """Delete the local store of every corrupt partition, in every table; Faust's recovery, which runs
        next, then restores it from the committed changelog."""
        for transactional_id, (cause, detail) in sorted(self.corrupt.items()):
            partition = partition_of(transactional_id)
            tables = [table.name for table in self.app.tables.values() if wipe_partition(self.app, table, partition)]
            TABLE_STATE_WIPES.labels(cause).inc()
            log.warning(
                "wiped local state of partition %d (tables: %s) after transaction %s ended without a "
                "commit (%s: %s); restoring it from the changelog",
                partition,
                ", ".join(tables) or "none stored here",
                transactional_id,
                cause,
                detail,
            )
        self.corrupt.clear()


def wipe_partition(app: Any, table: Any, partition: int) -> bool:
    """Close and delete ``table``'s RocksDB database of ``partition`` (its persisted changelog offset goes with
    it) and forget every offset Faust's recovery remembers for it, so the next recovery replays the changelog
    from its start. Returns whether there was anything on disk or open."""
    store = table.data
    path_of = getattr(store, "partition_path", None)
    if path_of is None:  # not a RocksDB store: nothing outlives the process
        return False
    db = store._dbs.pop(partition, None)
    if db is not None:
        db.close()
    for key, owner in list(store._key_index.items()):
        if owner == partition:
            store._key_index.pop(key, None)
    path = path_of(partition)
    existed = db is not None or path.exists()
    shutil.rmtree(path, ignore_errors=True)
    tp = TP(table.changelog_topic.get_topic_name(), partition)
    recovery = app.tables.recovery
    # Recovery keeps the offset it last read per changelog partition across rebalances; left in place it
    # would resume there and never replay what the wipe removed.
    for offsets in (recovery.active_offsets, recovery.standby_offsets):
        offsets.pop(tp, None)
    # An acked-but-aborted changelog offset waiting to be persisted on the next commit.
    app.tables._pending_persisted_offsets.pop(tp, None)
    return existed


def repair_for(app: Any) -> StateRepair:
    """The worker's one StateRepair (shared by its producer and its transaction manager)."""
    return state_of(app).state_repair
