"""Replicated topics on the three-broker cluster (deploy/kafka-cluster.sh, #19).

- ``crownstream topics create`` (ensure_topics) creates every registry topic with the configured replication
  factor and min.insync.replicas set on the topic itself (the brokers' default is 2 as well: the test reads the
  config's source, so an inherited value does not pass for one the pipeline set);
- a worker creates its changelogs and faust's leader topic the same way, and the brokers keep the consumer
  offsets and the transaction state log 3 times with min ISR 2;
- a worker refuses to start, naming each topic and its factor, when a topic it uses exists with a lower factor.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from crownstream.settings import Settings
from crownstream.streams.admin import ensure_topics, topic_layouts
from crownstream.streams.topics import ALL_TOPICS, TOURNAMENT_EVENTS
from tests.support.kafka_cleanup import delete_test_topics

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(300)]

#: DescribeConfigs' config_source of a config set on the topic itself (not inherited from the broker).
TOPIC_CONFIG = 1


@pytest.fixture
def replicated(settings: Settings, kafka_cluster_bootstrap_servers: str):
    """This test's settings on the three-broker cluster, replication factor 3 (min.insync.replicas 2 by default);
    its topics deleted from the cluster afterwards."""
    yield settings.model_copy(update={"kafka_bootstrap": kafka_cluster_bootstrap_servers, "topic_replication": 3})
    delete_test_topics(kafka_cluster_bootstrap_servers, (settings.topic_prefix, f"{settings.app_id}-"))


async def describe(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str | None, int | None]]:
    """Per topic: its replication factor, its min.insync.replicas and where that value comes from.

    A fresh client's metadata comes from whichever broker it asks, and a broker other than the controller can list
    a just-created topic a moment later (CI of 3c28938: every topic 0 replicas, i.e. not listed yet), so the
    layouts are read until they hold every name or 10 s have passed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        deadline = time.monotonic() + 10
        layouts = await topic_layouts(admin)
        while not set(names) <= layouts.keys() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            layouts = await topic_layouts(admin)
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n, None) for n in names])
        found = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                entry = next(
                    (e for e in resource["config_entries"] if e["config_names"] == "min.insync.replicas"), None
                )
                name = resource["resource_name"]
                found[name] = (
                    layouts[name].replication if name in layouts else 0,
                    entry and entry["config_value"],
                    entry and entry["config_source"],
                )
        return found
    finally:
        await admin.close()


async def test_created_topics_are_replicated_with_min_insync_replicas(replicated: Settings):
    reports = await ensure_topics(settings=replicated)
    assert {r.status for r in reports} == {"created"}, [r.line() for r in reports]
    assert {r.replication for r in reports} == {3}
    names = [spec.full_name(replicated) for spec in ALL_TOPICS]
    found = await describe(replicated.kafka_bootstrap, names)
    assert found == {name: (3, "2", TOPIC_CONFIG) for name in names}
    # Idempotent, and reported as it is.
    assert {r.status for r in await ensure_topics(settings=replicated)} == {"ok"}


async def test_a_worker_creates_its_internal_topics_replicated(replicated: Settings, start_worker):
    await ensure_topics(settings=replicated)
    worker = start_worker(kafka_bootstrap=replicated.kafka_bootstrap, topic_replication=3)
    assert worker.alive()
    admin = AIOKafkaAdminClient(bootstrap_servers=replicated.kafka_bootstrap)
    await admin.start()
    try:
        internal = [n for n in await admin.list_topics() if n.startswith(f"{replicated.app_id}-")]
    finally:
        await admin.close()
    changelogs = [n for n in internal if n.endswith("-changelog")]
    assert len(changelogs) > 10 and f"{replicated.app_id}-__assignor-__leader" in internal, internal
    found = await describe(replicated.kafka_bootstrap, internal)
    assert found == {name: (3, "2", TOPIC_CONFIG) for name in internal}
    # The brokers' own topics: a group's offsets and the transactions' state, 3 replicas, min ISR 2 (broker config).
    brokers_own = await describe(replicated.kafka_bootstrap, ["__consumer_offsets", "__transaction_state"])
    assert {name: (factor, isr) for name, (factor, isr, _) in brokers_own.items()} == {
        "__consumer_offsets": (3, "2"),
        "__transaction_state": (3, "2"),
    }


async def test_a_worker_refuses_to_start_on_an_under_replicated_topic(replicated: Settings, start_worker):
    await ensure_topics(settings=replicated)
    # One input topic as somebody made it by hand: one replica (the registry's others have 3).
    name = TOURNAMENT_EVENTS.full_name(replicated)
    admin = AIOKafkaAdminClient(bootstrap_servers=replicated.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name])
        for _ in range(100):  # until the deletion is done: re-creating before fails with TOPIC_ALREADY_EXISTS
            if name not in await admin.list_topics():
                break
            await asyncio.sleep(0.2)
        await admin.create_topics([NewTopic(name, TOURNAMENT_EVENTS.partition_count(replicated), 1)])
    finally:
        await admin.close()
    for _ in range(100):
        if (await describe(replicated.kafka_bootstrap, [name]))[name][0] == 1:
            break
        await asyncio.sleep(0.2)

    started = time.monotonic()
    worker = start_worker(wait=False, kafka_bootstrap=replicated.kafka_bootstrap, topic_replication=3)
    code = await asyncio.to_thread(worker.process.wait, 120)
    log = worker.log_path.read_text()
    assert code == 1, log[-3000:]
    assert (
        "crownstream worker: refusing to start: 1 topic it uses is replicated fewer times than "
        "CROWNSTREAM_TOPIC_REPLICATION=3:" in log
    ), log[-3000:]
    assert f"  {name}: replication factor 1\n" in log
    assert "Starting..." not in log, "refused before faust started anything"
    print(f"\nrefused in {time.monotonic() - started:.1f} s:\n{log.strip()}")
