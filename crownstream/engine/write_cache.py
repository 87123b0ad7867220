"""The table writes of a micro-batch: kept in memory, compacted per key, written once per key when the batch ends.

Under exactly_once every table write is a changelog record in the input partition's transaction, and Faust sends
one per assignment: a key written by each of a batch's 500 events (a stage's match count, a tournament's activity
counts) cost 500 changelog records, 500 RocksDB puts and 1,000 serialisations, where the committed result is the
last value. Kafka Streams puts a record cache in front of each store for this reason, and Quix Streams a
per-partition transaction cache; this is ours.

While a batch is being processed (``crownstream/engine/batches.py`` activates its cache for the agent's task), a
``CachedTable``:
- writes ``table[key] = value`` into the cache, encoded at once with the table's own serialiser (so a value the
  handler mutates after assigning it is stored as it was assigned, as with Faust's store);
- reads the cache first, then the store, with one store lookup instead of Faust's two (``key in store`` then
  ``store[key]``), and keeps what it read for the rest of the batch;
- at the end of the batch writes each dirty key once, in the order keys were first written: the changelog record
  (into the input partition's transaction, as Faust's own write would) and the store.
Each event is a savepoint: its writes join the batch only if it took effect. An event whose handler failed (and
whose record goes to the dead-letter topic) leaves no write behind, where Faust kept the writes made before the
failure.

Outside a batch (timers, views, recovery, agents that do not batch) a CachedTable is Faust's Table, unchanged.
The batch ends under the commit gate (UPSTREAM.md F3), so the flushed writes commit with the batch's offsets;
a transaction that aborts after the flush is handled as any other (F15: the partition's store is rebuilt from
the committed changelog).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from faust import Table
from faust.stores.base import SerializedStore

from crownstream.engine.stores import rebalancing

# A key whose cached state is "not in the table" (deleted in this batch, or read and found missing).
_ABSENT: Any = object()
# A key the cache knows nothing about.
_UNKNOWN: Any = object()


class WriteCache:
    """The dirty keys of one batch (per table, in first-write order) and the values it has read."""

    __slots__ = ("_event", "_read", "_tables", "_written")

    # Slots are (id(table), key): a Table is a Mapping, so it has no hash of its own.
    def __init__(self) -> None:
        self._tables: dict[int, Any] = {}
        self._written: dict[tuple[int, Any], Any] = {}  # encoded value, or _ABSENT for a delete
        self._event: dict[tuple[int, Any], Any] = {}  # the current event's writes, same encoding
        self._read: dict[tuple[int, Any], Any] = {}  # encoded value read from the store, or _ABSENT

    def lookup(self, table: Any, key: Any) -> Any:
        """The cached encoded value of ``key``: bytes, ``_ABSENT`` or ``_UNKNOWN``."""
        slot = (id(table), key)
        for layer in (self._event, self._written, self._read):
            value = layer.get(slot, _UNKNOWN)
            if value is not _UNKNOWN:
                return value
        return _UNKNOWN

    def remember(self, table: Any, key: Any, encoded: Any) -> None:
        self._read[(id(table), key)] = encoded

    def write(self, table: Any, key: Any, encoded: Any) -> None:
        self._tables[id(table)] = table
        self._event[(id(table), key)] = encoded

    def dirty(self, table: Any = None) -> int:
        """How many keys (of ``table``, or of every table) the batch has written, the current event's included."""
        slots = self._written.keys() | self._event.keys()
        return len(slots) if table is None else sum(1 for t, _ in slots if t == id(table))

    def end_event(self, *, took_effect: bool) -> None:
        """The current event is done: its writes join the batch, or (it failed) are dropped."""
        if took_effect:
            self._written.update(self._event)
        self._event.clear()

    def flush(self, table: Any = None, changelog: list[ChangelogRecord] | None = None) -> int:
        """Write the batch's dirty keys (of ``table``, or of every table) through to the changelog and the store,
        once per key, in first-write order; an event still open is ended first, as taking effect. Returns how
        many keys were written. Must run while an event of the batch's partition is the current event (the
        changelog partition and the store's partition come from it). With ``changelog``, the changelog records are
        appended to it for the caller to send (``batches.Batch.flush``) instead of going through Faust's send."""
        self.end_event(took_effect=True)
        slots = [slot for slot in self._written if table is None or slot[0] == id(table)]
        for slot in slots:
            encoded = self._written.pop(slot)
            self._tables[slot[0]].write_through(slot[1], encoded, changelog)
            self._read[slot] = encoded
        return len(slots)


@dataclass(frozen=True, slots=True)
class ChangelogRecord:
    table: Any
    topic: str
    partition: int
    key: bytes
    value: bytes | None


# The cache of the batch the current task is processing; None outside a batch.
ACTIVE: ContextVar[WriteCache | None] = ContextVar("crownstream_write_cache", default=None)


class CachedTable(Table[Any, Any]):
    """Faust's Table, with the batch write cache in front of it while a batch is active (module docstring), on a
    RocksDB store that does not collect garbage per table per rebalance (``stores.py``)."""

    def _new_store_by_url(self, url: Any) -> Any:
        return rebalancing(super()._new_store_by_url(url))

    def _cache(self) -> WriteCache | None:
        """The active batch's cache, if this table's store is one the cache can sit in front of (a store of
        encoded values, as RocksDB's; an in-memory store of objects is left to Faust)."""
        cache = ACTIVE.get()
        return cache if cache is not None and isinstance(self.data, SerializedStore) else None

    @property
    def _serialized(self) -> Any:
        # The SerializedStore below the table (``_cache`` checked it): its encode/decode and raw get/set/del.
        return self.data

    def _encoded(self, value: Any) -> Any:
        return self._serialized._encode_value(value)

    def _decoded(self, key: Any, encoded: Any) -> Any:
        if encoded is _ABSENT:
            return self.__missing__(key)
        return self._serialized._decode_value(encoded)

    def _read_store(self, cache: WriteCache, key: Any) -> Any:
        # One lookup, where FastUserDict.__getitem__ asks the store for the key twice (contains, then get).
        encoded = self._serialized._get(self._serialized._encode_key(key))
        encoded = _ABSENT if encoded is None else encoded
        cache.remember(self, key, encoded)
        return encoded

    def __getitem__(self, key: Any) -> Any:
        cache = self._cache()
        if cache is None:
            return super().__getitem__(key)
        self.on_key_get(key)
        encoded = cache.lookup(self, key)
        if encoded is _UNKNOWN:
            encoded = self._read_store(cache, key)
        return self._decoded(key, encoded)

    def get(self, key: Any, default: Any = None) -> Any:
        # Mapping.get goes through __getitem__ and a KeyError for every missing key (a new match's result, say).
        cache = self._cache()
        if cache is None:
            return super().get(key, default)
        self.on_key_get(key)
        encoded = cache.lookup(self, key)
        if encoded is _UNKNOWN:
            encoded = self._read_store(cache, key)
        if encoded is _ABSENT:
            return self.default() if self.default is not None else default
        return self._serialized._decode_value(encoded)

    def __contains__(self, key: object) -> bool:
        cache = self._cache()
        if cache is None:
            return super().__contains__(key)
        encoded = cache.lookup(self, key)
        if encoded is _UNKNOWN:
            encoded = self._read_store(cache, key)
        return encoded is not _ABSENT

    def __setitem__(self, key: Any, value: Any) -> None:
        cache = self._cache()
        if cache is None:
            super().__setitem__(key, value)
            return
        cache.write(self, key, self._encoded(value))

    def __delitem__(self, key: Any) -> None:
        cache = self._cache()
        if cache is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        cache.write(self, key, _ABSENT)

    def write_through(self, key: Any, encoded: Any, changelog: list[ChangelogRecord] | None = None) -> None:
        """One flushed key: what Faust's own assignment or ``del`` does, with the value already encoded; the
        changelog record sent through Faust, or appended to ``changelog``."""
        key_bytes = self._serialized._encode_key(key)
        # Inside a batch the current event names the partition (Faust's partition_for_key is None only for a
        # table that uses the producer's partitioner, which no table here does).
        partition = self.partition_for_key(key)
        value = None if encoded is _ABSENT else encoded
        if changelog is None:
            self.send_changelog(partition, key_bytes, value, key_serializer="raw", value_serializer="raw")
        else:
            if partition is None:
                raise TypeError(f"table {self.name} uses the producer's partitioner: its writes cannot be batched")
            changelog.append(ChangelogRecord(self, self.changelog_topic.get_topic_name(), partition, key_bytes, value))
        if value is None:
            self._serialized._del(key_bytes)
            self._sensor_on_del(self, key)
        else:
            self._serialized._set(key_bytes, value)
            self._sensor_on_set(self, key, value)

    # What reads the whole table (or bulk-writes it) sees the batch's writes: they are written through first.
    def flush_batch_writes(self) -> None:
        """Write this table's pending writes of the current batch through to the store now: for code that reads
        the store below the table (a broadcast walking one partition's RocksDB keys)."""
        cache = self._cache()
        if cache is not None and cache.dirty(self):
            cache.flush(self)

    _flush_pending = flush_batch_writes

    def __iter__(self) -> Iterator[Any]:
        self._flush_pending()
        return super().__iter__()

    def __len__(self) -> int:
        self._flush_pending()
        return super().__len__()

    def keys(self) -> Any:
        self._flush_pending()
        return super().keys()

    def values(self) -> Any:
        self._flush_pending()
        return super().values()

    def items(self) -> Any:
        self._flush_pending()
        return super().items()

    def update(self, *args: Any, **kwargs: Any) -> None:
        if self._cache() is None:
            super().update(*args, **kwargs)
            return
        for mapping in (*args, kwargs):
            for key, value in dict(mapping).items():
                self[key] = value

    def clear(self) -> None:
        self._flush_pending()
        super().clear()
