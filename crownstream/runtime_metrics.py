"""Gauges of a running worker that no event updates by itself: consumer lag per source partition and the
number of keys in each table, refreshed every ``CROWNSTREAM_METRICS_REFRESH_S`` (and on every scrape of
``/metrics``, so a scrape never reads numbers older than the refresh interval).

Lag is measured against the high-water mark the consumer last fetched (no broker round trip), so it lags
by at most one fetch. Table sizes are RocksDB's key estimate of the partitions this worker owns actively
(an exact count would scan every key: a million-key table would cost a second per scrape).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

import faust
from faust.types import TP

from crownstream.metrics import CONSUMER_LAG, TABLE_KEYS

log = logging.getLogger(__name__)


def lag_by_partition(positions: Mapping[TP, int | None], highwaters: Mapping[TP, int | None]) -> dict[TP, int]:
    """Records each partition still has to consume; partitions without a position or high-water mark yet
    (just assigned, nothing fetched) are left out rather than reported as 0."""
    lag = {}
    for tp, position in positions.items():
        highwater = highwaters.get(tp)
        if position is None or highwater is None:
            continue
        lag[tp] = max(0, highwater - position)
    return lag


def source_partitions(actives: Iterable[TP]) -> list[TP]:
    """The input partitions of the agents: changelogs are recovered, not consumed, and have no lag to show."""
    return sorted(tp for tp in actives if not tp.topic.endswith("-changelog"))


async def consumer_lag(app: faust.App) -> dict[TP, int]:
    consumer = app.consumer
    positions: dict[TP, int | None] = {}
    highwaters: dict[TP, int | None] = {}
    for tp in source_partitions(app.assignor.assigned_actives()):
        try:
            positions[tp] = await consumer.position(tp)
        except Exception:  # assigned by the group but not yet in the consumer (mid-rebalance)
            positions[tp] = None
        highwaters[tp] = consumer.highwater(tp)
    return lag_by_partition(positions, highwaters)


def table_keys(app: faust.App, table: faust.Table) -> int:
    """Keys of ``table`` in the partitions this worker owns actively (an estimate for RocksDB stores)."""
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        return len(store)  # in-memory store: exact and cheap
    topic = table.changelog_topic.get_topic_name()
    actives = app.assignor.assigned_actives()
    total = 0
    for partition, db in list(dbs.items()):
        if TP(topic, partition) in actives:
            total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
    return total


async def refresh(app: faust.App, lag_timeout_s: float = 1.0) -> None:
    """Set the gauges from the worker's current state; label sets of partitions it lost are removed.

    Positions are read in the consumer's thread, which runs one call at a time: while it waits on the broker (a
    committed-offset fetch held by an open transaction, a seek during a rebalance) the lag keeps its last
    values rather than hold up a scrape."""
    try:
        try:
            lag: dict[TP, int] | None = await asyncio.wait_for(consumer_lag(app), lag_timeout_s)
        except TimeoutError:
            lag = None
        if lag is not None:
            CONSUMER_LAG.clear()
            for tp, value in lag.items():
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(value)
        for table in app.tables.values():
            TABLE_KEYS.labels(table.name).set(table_keys(app, table))
    except Exception:  # a metric must never take a worker down; the next refresh tries again
        log.warning("could not refresh runtime metrics", exc_info=True)
