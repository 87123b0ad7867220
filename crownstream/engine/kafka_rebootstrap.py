"""aiokafka clients that lost every broker go back to the bootstrap servers instead of spinning forever.

A client started while the broker restarts can bootstrap from a metadata answer that lists no brokers yet;
aiokafka then keeps only the bootstrap connection, and once that connection drops the client knows no node
to ask: "Unable to update metadata from []" ten times a second, for good. In the soak scenario a
transactional producer created by the rebalance that followed a broker restart did exactly that — its
InitProducerId never left ("Cannot send ... to None"), so the worker never took its partitions and the
group's standings stopped for the tournaments it owned. Clients of other languages re-bootstrap in that state
(KIP-899); this adds the same to aiokafka 0.14's metadata update, for every client in the process (the
worker's consumer, its producers, the restore consumer), installed once by ``crownstream.engine.install``
(at app creation; a second call does nothing).

UPSTREAM.md row F16: the one process-wide monkeypatch of the engine.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, cast

from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError

log = logging.getLogger(__name__)

_BOOTSTRAP = ("bootstrap", ConnectionGroup.DEFAULT)


def knows_no_broker(client: AIOKafkaClient) -> bool:
    """No broker in the metadata and no live bootstrap connection: nothing left to ask for metadata."""
    if client.cluster.brokers():
        return False
    conn = client._conns.get(_BOOTSTRAP)
    return conn is None or not conn.connected()


def install() -> None:
    if getattr(AIOKafkaClient._metadata_update, "_rebootstraps", False):
        return
    # aiokafka leaves it unannotated: (client, metadata to fill, topics) -> whether the update succeeded.
    original = cast(
        Callable[[AIOKafkaClient, ClusterMetadata, Any], Coroutine[Any, Any, bool]], AIOKafkaClient._metadata_update
    )

    # wraps: the patch keeps ``__wrapped__``, through which the upstream-contract test still reads aiokafka's own.
    @functools.wraps(original)
    async def _metadata_update(self: AIOKafkaClient, cluster_metadata: ClusterMetadata, topics: Any) -> bool:
        if knows_no_broker(self):
            try:
                await self.bootstrap()
            except KafkaConnectionError as exc:
                log.warning("kafka client %s knows no broker and cannot bootstrap again yet: %s", self._client_id, exc)
                return False
            log.warning(
                "kafka client %s had lost every broker; bootstrapped again from %s",
                self._client_id,
                self._bootstrap_servers,
            )
        return await original(self, cluster_metadata, topics)

    _metadata_update._rebootstraps = True  # type: ignore[attr-defined]  # a marker on the function: functions declare no attributes
    AIOKafkaClient._metadata_update = _metadata_update  # type: ignore[method-assign]  # the patch (F16) of an unannotated aiokafka method
