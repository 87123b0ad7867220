"""RocksDB stores without a full garbage collection per table per rebalance (crownstream/engine/stores.py,
UPSTREAM.md F23), on real rocksdict databases in a temporary directory (no broker: a store's revoke and reopen are
all there is to it)."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from faust.stores.rocksdb import RocksDBOptions, Store
from faust.types import TP

from crownstream.engine.stores import RebalancingStore, rebalancing

CHANGELOG = "cs-standings-changelog"


def store_in(cls: type, root: Path) -> Store:
    store = object.__new__(cls)
    store._dbs = {}
    store.read_only = False
    store.rocksdb_options = RocksDBOptions()
    store.logger = logging.getLogger("test")
    store.partition_path = lambda partition: root / f"standings-{partition}.db"  # shadows the method
    return store


TABLE = SimpleNamespace(changelog_topic=SimpleNamespace(topics={CHANGELOG}))


@pytest.fixture
def collections(monkeypatch):
    counted = []
    real = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: counted.append(1) or real(*a))
    return counted


def test_a_revoke_drops_the_database_without_collecting_garbage_and_it_reopens(tmp_path, collections):
    store = store_in(RebalancingStore, tmp_path)
    store._db_for_partition(3)[b"team-01"] = b"12"
    store.revoke_partitions(TABLE, {TP(CHANGELOG, 3), TP(CHANGELOG, 5)})
    assert store._dbs == {} and collections == []
    assert store._db_for_partition(3)[b"team-01"] == b"12"  # freed at once: its lock is gone, the reopen works
    assert collections == []


def test_a_dropped_database_kept_alive_by_a_cycle_is_collected_when_reopened(tmp_path, collections):
    store = store_in(RebalancingStore, tmp_path)
    cycle: dict = {}
    cycle["self"], cycle["db"] = cycle, store._db_for_partition(4)  # a handle only the collector can free
    store.revoke_partitions(TABLE, {TP(CHANGELOG, 4)})
    del cycle
    gc.disable()  # no automatic collection in between: the reopen meets the lock
    try:
        assert store._db_for_partition(4) is not None
    finally:
        gc.enable()
    assert len(collections) == 1


def test_faust_collects_garbage_on_every_revoke(tmp_path, collections):
    """The upstream behaviour the store removes (F23: removable when this fails)."""
    store_in(Store, tmp_path).revoke_partitions(TABLE, set())
    assert collections == [1]


def test_only_faust_rocksdb_stores_are_retyped():
    made = object.__new__(Store)
    assert type(rebalancing(made)) is RebalancingStore
    other = SimpleNamespace()
    assert rebalancing(other) is other


def assigning(store: Store, actives: set[TP], standbys: set[TP] = frozenset()) -> Store:
    assignor = SimpleNamespace(assigned_standbys=lambda: set(standbys))
    store.app = SimpleNamespace(assignor=assignor, consumer_generation_id=1)
    store.table = TABLE
    store.rebalance_ack = False
    return store


async def test_an_assignment_opens_only_the_partitions_with_a_database_on_disk(tmp_path):
    store = store_in(RebalancingStore, tmp_path)
    store._db_for_partition(1)[b"team-01"] = b"12"
    store.revoke_partitions(TABLE, {TP(CHANGELOG, 1)})
    assigning(store, {TP(CHANGELOG, 1), TP(CHANGELOG, 2)})
    await store.assign_partitions(TABLE, {TP(CHANGELOG, 1), TP(CHANGELOG, 2)}, 1)
    assert set(store._dbs) == {1}  # its data is served (and iterated) at once
    assert not (tmp_path / "standings-2.db").exists()  # created when first written or read, not now
    store._db_for_partition(2)[b"team-02"] = b"7"
    assert store._dbs[2][b"team-02"] == b"7"


async def test_faust_creates_a_database_for_every_newly_assigned_active(tmp_path):
    """The upstream behaviour the store removes (F26: removable when this fails)."""
    store = assigning(store_in(Store, tmp_path), {TP(CHANGELOG, 2)})
    store.log = store.logger
    await store.assign_partitions(TABLE, {TP(CHANGELOG, 2)}, 1)
    assert (tmp_path / "standings-2.db").exists()


def test_a_partition_with_no_database_has_no_persisted_offset_and_is_not_created(tmp_path):
    store = store_in(RebalancingStore, tmp_path)
    assert store.persisted_offset(TP(CHANGELOG, 6)) is None
    assert store._dbs == {} and not (tmp_path / "standings-6.db").exists()
    store.set_persisted_offset(TP(CHANGELOG, 6), 41)
    store.revoke_partitions(TABLE, {TP(CHANGELOG, 6)})
    assert store.persisted_offset(TP(CHANGELOG, 6)) == 41  # on disk: opened and read as Faust does
