"""Which partition a key lands in: the bytes and the partitioner (murmur2, as Kafka's Java client and aiokafka
use) our producers key records with. Agents send outputs to an explicit partition with it, and the web layer
routes a query to the worker that owns that key's partition (web/routing.py)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

_partitioner = DefaultPartitioner()


def partition_for(key: str, partitions: int) -> int:
    return _partitioner(key.encode(), list(range(partitions)), None)
