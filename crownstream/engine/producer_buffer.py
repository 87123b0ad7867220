"""A producer buffer whose ``flush`` returns only when every buffered record has been handed to its producer.

Faust routes table writes (``table[key] = value``, a synchronous call) through ``ProducerBuffer``: the record is
queued and a background task sends it. Under exactly_once the commit must drain that buffer first, or an input
offset commits in one transaction while the changelog write it caused lands in the next — which a crash aborts,
so the new owner resumes *after* an event whose effect it never sees (a match result missing from the
standings after a kill -9, seen in 4 of 4 runs of tests/integration/test_standings_cluster.py on a loaded
machine).

faust-streaming's ``flush`` does not drain: it waits at most 0.1 s for *a* record to be sent and returns when
none was, with records still queued; and it never waits for the record the background task has already taken
from the queue and is still sending. This one sends what is queued itself and then waits for the record in
flight, so after ``flush`` every buffered write is in the producer's accumulator — inside the transaction the
commit that follows ends.

UPSTREAM.md row F2. ``producer._StateTrackingProducer`` puts it in place of faust's buffer.
"""

from __future__ import annotations

import asyncio

from faust.transport.producer import ProducerBuffer
from faust.types import FutureMessage


class DrainingProducerBuffer(ProducerBuffer):
    def __post_init__(self) -> None:
        super().__post_init__()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def _send_pending(self, fut: FutureMessage) -> None:
        # Counted before the first await: the background task takes a record off the queue and calls this in
        # one step, so "queue empty and nothing in flight" is never true while a record is between the two.
        self._in_flight += 1
        self._idle.clear()
        try:
            await super()._send_pending(fut)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def flush(self) -> None:
        """Send everything queued, then wait for the record the background task is sending, if any."""
        if self.app is not None and self.app.conf.producer_threaded:
            return await super().flush()  # the threaded producer has its own queue and flush
        while True:
            try:
                fut = self.pending.get_nowait()
            except asyncio.QueueEmpty:
                break
            await self._send_pending(fut)
            self.message_sent.set()
        await self._idle.wait()
