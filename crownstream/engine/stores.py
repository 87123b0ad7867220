"""Faust's RocksDB store without a full garbage collection per table per rebalance, and without empty databases
created at assignment.

Faust's ``Store.revoke_partitions`` drops the revoked partitions' databases and then calls ``gc.collect()`` — for
every table, at every rebalance, whether or not it dropped anything — so that a dropped database is freed and its
file lock released before the partition may be opened again. A full collection of a worker's heap takes 0.2-0.5 s
(more on a loaded machine), on the event loop, and the worker has 16 tables: the operations scenario's worker logs
show the loop blocked 3.5-8.5 s inside the assignment ("Timer … woke up too late, with a drift of +8.5"), most of
the rebalance pause issue #15 measures. A database dropped from ``_dbs`` is freed by reference counting as soon as
nothing else holds it; only one caught in a reference cycle keeps its lock, and then the reopen meets "lock" — so
the collection runs there, once, and the open is tried again.

Faust also opens a database for every partition a worker is newly assigned, active or standby, during the
assignment: the actives in ``assign_partitions``, the standbys when recovery reads each one's persisted offset —
creating an empty database for a partition the worker never held. An open is 7-20 ms (rocksdict holds the GIL:
it cannot move to a thread), and a worker taking over a leaving worker's share opens dozens: 0.55 s for the actives
and 0.78 s for the standbys of one bench run, most of the longest rebalance pause left (#15). A partition with no
database on disk has nothing to read: it is created when it is first written or read, not at assignment, and its
persisted offset is "none" without creating it. One that exists is opened as before (a table's iteration walks the
open databases only).

UPSTREAM.md rows F23 and F26. ``rebalancing(store)`` re-types the store Faust made for a table
(``write_cache.CachedTable._new_store_by_url``); a store of another kind (memory://) is left as it is.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from faust.stores.rocksdb import Store
from faust.types import TP

log = logging.getLogger(__name__)


class RebalancingStore(Store):
    def revoke_partitions(self, table: Any, tps: Any) -> None:
        for tp in tps:
            if tp.topic in table.changelog_topic.topics and self._dbs.pop(tp.partition, None) is not None:
                self.logger.info(f"closing db {tp.topic} partition {tp.partition}")

    async def assign_partitions(self, table: Any, tps: Any, generation_id: int = 0) -> None:
        on_disk = {tp for tp in tps if tp.partition in self._dbs or self._on_disk(tp.partition)}
        await super().assign_partitions(table, on_disk, generation_id)

    def persisted_offset(self, tp: TP) -> int | None:
        if tp.partition not in self._dbs and not self._on_disk(tp.partition):
            return None
        return super().persisted_offset(tp)

    def _on_disk(self, partition: int) -> bool:
        return Path(self.partition_path(partition)).exists()

    def _open_for_partition(self, partition: int) -> Any:
        try:
            return super()._open_for_partition(partition)
        except Exception as exc:
            if "lock" not in repr(exc).lower():
                raise
            # A database of this partition dropped earlier is still alive in a reference cycle: free it.
            log.info("partition %d's database is still locked by a dropped handle; collecting it", partition)
            gc.collect()
            return super()._open_for_partition(partition)


def rebalancing(store: Any) -> Any:
    """``store``, as a RebalancingStore if it is Faust's RocksDB store (re-typed: it keeps everything Faust set)."""
    if type(store) is Store:
        store.__class__ = RebalancingStore
    return store
