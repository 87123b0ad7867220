"""A transactional producer that rides out a broker restart while it looks for its transaction coordinator.

aiokafka 0.14's ``Sender._find_coordinator`` retries a FindCoordinator that answers "not available", "node not
ready" or "timed out", but a connection that *closes* under the request (the broker going down mid-request, as in
the operations scenario's broker restart) is any other ``KafkaError`` to it: it re-raises, the sender routine dies
("Unexpected error in sender routine"), and from then on the producer fails every commit with "Unexpected error
during batch delivery" — the worker's consumer crashed on its next commit and the worker stopped. The Java client
treats a disconnect as retriable and looks the coordinator up again; this does the same for the producers Faust
makes for the engine (``_StateTrackingProducer._new_producer``), through a Sender subclass, not a patch of aiokafka.

UPSTREAM.md row F22.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.producer.sender import Sender

log = logging.getLogger(__name__)


class _DisconnectTolerantSender(Sender):
    async def _find_coordinator(self, coordinator_type: Any, coordinator_key: Any) -> Any:
        while True:
            try:
                return await super()._find_coordinator(coordinator_type, coordinator_key)  # type: ignore[no-untyped-call]  # aiokafka's, unannotated
            except Exception as exc:
                if not isinstance(exc.__cause__, KafkaConnectionError):
                    raise
                # The same back-off as aiokafka's own retries of a coordinator that is not available.
                log.warning("transaction coordinator lookup lost its connection; looking again: %s", exc.__cause__)
                await self.client.force_metadata_update()
                await asyncio.sleep(self._retry_backoff)


def tolerate_disconnects(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """``producer``, its sender looking the coordinator up again after a dropped connection (module docstring).
    Re-typed, not rebuilt: the Sender aiokafka made holds the client, accumulator and transaction manager."""
    producer._sender.__class__ = _DisconnectTolerantSender
    return producer
