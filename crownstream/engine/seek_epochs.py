"""Records fetched before their partition was sought are stale: they must not reach the agents or recovery.

Faust's consumer runs aiokafka in a thread of its own; a batch of records returned by a fetch there is
handed to the worker's loop and iterated over there, one record at a time, while rebalances, recovery and
``perform_seek`` go on. A seek executed in the consumer's thread after the batch left it (to the committed
offsets after a rebalance, to a changelog's restart offset) makes the rest of that batch stale — and Faust
still delivers it. A stale record ahead of the new position is worse than a duplicate: Faust takes the
offsets between the position and the stale record for a gap (under exactly_once, transaction markers leave
gaps), counts them as processed and commits past them, and then drops the records it fetches again from the
position as already read. (A soak run lost three in-app delivery requests around a broker restart; this is the
mechanism that fits, not traced record by record.)

aiokafka itself discards records buffered before a seek, so a batch the fetch returns *after* the seek is
fresh. An epoch per partition, bumped in the consumer's thread at the very moment of a seek and stamped on
each batch when the fetch returns, tells the two apart: a record whose partition was sought since its batch
was fetched is dropped, and the seek reads it again from the right offset.

A seek can also be *decided* before it is done: after a rebalance the streams are sought to their committed
offsets, which must first be asked of the broker while the fetcher runs. A record
iterated in that time comes from the old position, and its seek is still to come — it is dropped as well
(``seeking``), and read again once the seek is done. A record fetched after its partition's seek is kept,
even while other partitions still wait for theirs: dropping it would lose it, since the position has already
moved past it and no seek is coming to bring it back.

UPSTREAM.md row F8: stamped in ``consumer_thread``, checked in ``consumer``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def key_of(tp: Any) -> tuple[str, int]:
    """Faust's TP and aiokafka's TopicPartition name a partition alike."""
    return tp.topic, tp.partition


class SeekEpochs:
    def __init__(self) -> None:
        self._epochs: dict[tuple[str, int], int] = {}
        self._seeking: set[tuple[str, int]] = set()

    def seeking(self, tps: Iterable[Any]) -> None:
        """Call in the consumer's thread when seeks of ``tps`` are decided but their offsets not known yet:
        until each is ``sought`` (or ``abandon``-ed), every record of its partition is stale."""
        self._seeking.update(key_of(tp) for tp in tps)

    def sought(self, tps: Iterable[Any]) -> None:
        """Call in the consumer's thread right before seeking ``tps``, with no await in between."""
        for tp in tps:
            key = key_of(tp)
            # The epoch first: a record let through once its seek is no longer pending must meet the new epoch.
            self._epochs[key] = self._epochs.get(key, 0) + 1
            self._seeking.discard(key)

    def abandon(self, tps: Iterable[Any]) -> list[tuple[str, int]]:
        """Seeks decided but not done (the seeking step failed or was cancelled): the partitions keep their
        positions, and their records are no longer held back. Returns the partitions that were still pending."""
        left = [key for key in map(key_of, tps) if key in self._seeking]
        self._seeking.difference_update(left)
        return left

    def stamp(self, tps: Iterable[Any]) -> dict[tuple[str, int], int]:
        """The epochs of a batch's partitions, taken in the consumer's thread when its fetch returns."""
        return {key_of(tp): self._epochs.get(key_of(tp), 0) for tp in tps}

    def is_stale(self, stamp: dict[tuple[str, int], int] | None, tp: Any) -> bool:
        key = key_of(tp)
        if key in self._seeking:
            return True
        if stamp is None:
            return False
        return stamp.get(key, 0) != self._epochs.get(key, 0)


class StampedRecords(dict[Any, list[Any]]):
    """A fetch's records (aiokafka TopicPartition -> records) with the epochs they were fetched in."""

    seek_epochs: dict[tuple[str, int], int] | None = None
