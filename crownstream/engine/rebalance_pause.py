"""How long a rebalance stops this worker's processing: from the revocation of its partitions to the first event
it processes in the new generation (``crownstream_rebalance_pause_seconds``).

Faust's consumer protocol is eager: every rebalance revokes every partition of every member, so each worker's
pause covers the whole of it — the group's join and sync, the offsets and table restores of recovery, the
committed-offset fetch (which waits for pending transactions, ``offset_fetch.py``) and the seek. A worker with
nothing assigned before (a fresh start) has no pause to report; a worker that then gets no events has none
either, until its first event comes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from crownstream.metrics import REBALANCE_PAUSE_SECONDS

log = logging.getLogger(__name__)


class RebalancePause:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None
        self._generation: int | None = None

    def revoked(self, partitions: int, generation: int) -> None:
        """Partitions were revoked; the first rebalance of a series (revoked again before any event) counts."""
        if partitions and self._since is None:
            self._since, self._generation = self._clock(), generation

    def processing(self, generation: int) -> float | None:
        """An event is processed in ``generation``; returns the pause it ends, if it ends one."""
        if self._since is None or generation == self._generation:
            return None
        paused, self._since = self._clock() - self._since, None
        REBALANCE_PAUSE_SECONDS.observe(paused)
        log.info("processing resumed %.3f s after the rebalance's revocation (generation %d)", paused, generation)
        return paused
