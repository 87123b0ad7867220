"""Skip declaring topics that already exist: one metadata request at start instead of a CreateTopics round trip
(and a forced metadata refresh) per topic, per declaration.

Faust declares every table's changelog (and every agent's topic) when the table starts and again when recovery
starts, each through a CreateTopics request to the controller followed by ``force_metadata_update`` — ~0.3-0.4 s
apiece on a loaded machine, even when the broker answers "already exists" (faust only skips topics in the client's
metadata cache, which a fresh producer does not have). With ~15 changelogs that was ~11 s of every restart,
whatever the size of the tables. A topic present when the worker starts is left alone (faust would not change an
existing topic either); a missing one is created as before, and remembered.

A topic it creates gets the deployment's topic configs (``Settings.topic_configs``: min.insync.replicas) under
the declaration's own.

UPSTREAM.md row F17. ``DeclareOnceTransport`` is the transport ``install`` sets on the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from crownstream.engine.producer import _StateTrackingProducer
from crownstream.engine.state import state_of
from crownstream.engine.transport import CrownstreamTransport

log = logging.getLogger(__name__)


class _ExistingTopics:
    """The broker's topic names, fetched once per transport, plus the ones this worker created since."""

    def __init__(self) -> None:
        self._names: set[str] | None = None
        self._lock = asyncio.Lock()

    async def names(self, client: AIOKafkaClient) -> set[str]:
        async with self._lock:
            if self._names is None:
                self._names = set((await client.fetch_all_metadata()).topics())
        return self._names


class DeclareOnceTransport(CrownstreamTransport):
    class Producer(_StateTrackingProducer):  # CrownstreamTransport.Producer, declaring each topic once
        async def create_topic(self, topic: str, partitions: int, replication: int, **kwargs: Any) -> None:
            # Checked here too, not only in the transport's _create_topic: faust's producer forces a metadata
            # refresh after every declaration, which is the other half of the cost.
            transport = cast(DeclareOnceTransport, self.transport)  # the transport that made this producer
            if topic in await transport.existing_topics.names(self._ensure_producer().client):
                return
            await super().create_topic(topic, partitions, replication, **kwargs)  # remembered by _create_topic

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing_topics = _ExistingTopics()

    async def _create_topic(
        self,
        owner: Any,
        client: AIOKafkaClient,
        topic: str,
        partitions: int,
        replication: int,
        **kwargs: Any,
    ) -> None:
        # The consumer's declarations (agents' topics) come here directly, without the producer's create_topic.
        existing = await self.existing_topics.names(client)
        if topic in existing:
            return
        # Every topic faust creates (changelogs, the leader topic, agents' topics) gets the settings' topic configs
        # (min.insync.replicas) under its own; its replication factor is the app's topic_replication_factor.
        kwargs["config"] = with_topic_configs(state_of(self.app).settings.topic_configs(), kwargs.get("config"))
        await super()._create_topic(owner, client, topic, partitions, replication, **kwargs)
        existing.add(topic)
        await _until_visible(client, topic, partitions)


def with_topic_configs(defaults: Mapping[str, str], config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A declaration's topic configs over the deployment's ``defaults`` (a topic that sets one keeps its own)."""
    return {**defaults, **(config or {})}


def every_partition_led(cluster: ClusterMetadata, topic: str, partitions: int) -> bool:
    """``cluster`` (aiokafka ClusterMetadata) lists ``topic`` with ``partitions`` partitions, each with a leader
    (broker ids start at 0: a leader of 0 is a leader)."""
    found = cluster.partitions_for_topic(topic) or set()
    leaders = [cluster.leader_for_partition(TopicPartition(topic, p)) for p in found]
    return len(found) >= partitions and all(leader is not None and leader >= 0 for leader in leaders)


async def _until_visible(client: AIOKafkaClient, topic: str, partitions: int, timeout: float = 30.0) -> None:
    """Wait until every broker's metadata lists the new topic with a leader for every partition. The consumer
    subscribes right after the tables declare their changelogs; a group joined while a busy broker (thousands of
    partitions to load after a start) does not list them yet assigns none of their partitions ("Ignoring missing
    topic"), and nothing makes the worker join again: its tables then fail every write (PartitionsMismatch).
    Every broker, not the one that answered: aiokafka asks a random broker for metadata, and on three brokers a
    loaded one may not have applied the new topic yet (seen: a worker's changelog 'has 0 partitions' a minute after
    its creation, tests/integration/test_cluster_failover.py)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await _led_on_every_broker(client, topic, partitions):
            return
        if loop.time() > deadline:
            log.warning("topic %s created but not in the brokers' metadata after %.0f s; going on", topic, timeout)
            return
        await asyncio.sleep(0.1)


async def _led_on_every_broker(client: AIOKafkaClient, topic: str, partitions: int) -> bool:
    """Each broker the client knows answers a metadata request for ``topic`` with every partition led (a broker
    that cannot be reached is not waited for: the consumer cannot ask it either)."""
    cluster = await client.fetch_all_metadata()
    if not every_partition_led(cluster, topic, partitions):
        return False
    for node_id in [broker.nodeId for broker in cluster.brokers()]:
        try:
            response = await client.send(node_id, MetadataRequest([topic]))
        except (TimeoutError, KafkaError, OSError):
            continue
        view = ClusterMetadata()
        view.update_metadata(response)
        if not every_partition_led(view, topic, partitions):
            return False
    return True
