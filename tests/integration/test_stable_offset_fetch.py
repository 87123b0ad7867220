"""Committed offsets are fetched stably (crownstream/engine/offset_fetch.py, KIP-447).

The window, reproduced deterministically: a transaction that holds a partition's offsets is still open (its
commit markers not written yet) when a consumer of the group asks for the committed offsets. Without
``require_stable`` the broker answers the previous committed offset, and a new owner reprocesses what the
transaction's owner already processed; with it the broker answers UNSTABLE_OFFSET_COMMIT until the transaction
settles and the fetch waits for it.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from crownstream.demo.tournament import demo_tournament
from crownstream.engine.offset_fetch import install_stable_offset_fetch
from crownstream.schemas.codec import validate
from crownstream.streams.partitioning import partition_for
from crownstream.streams.producer import event_record
from tests.integration.test_standings_cluster import expected_standings, produce, standings_of, wait_until

GROUP_OFFSET_BEFORE, GROUP_OFFSET_PENDING = 7, 42


async def _commit_offsets_in_transaction(producer: AIOKafkaProducer, tp: TopicPartition, offset: int, group: str):
    await producer.begin_transaction()
    await producer.send_and_wait(tp.topic, b"x", partition=tp.partition)
    await producer.send_offsets_to_transaction({tp: offset}, group)


async def test_a_pending_transactional_offset_commit_is_waited_for_not_read_stale(settings):
    topic, group = f"{settings.topic_prefix}stable-offsets", f"{settings.app_id}-stable"
    tp = TopicPartition(topic, 0)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, transactional_id=f"{group}-tx")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        await _commit_offsets_in_transaction(producer, tp, GROUP_OFFSET_BEFORE, group)
        await producer.commit_transaction()
        await _commit_offsets_in_transaction(producer, tp, GROUP_OFFSET_PENDING, group)

        # The window: aiokafka's own fetch answers the offset the open transaction is about to replace.
        assert await consumer.committed(tp) == GROUP_OFFSET_BEFORE

        install_stable_offset_fetch(consumer)
        unstable_before = _unstable_here()
        fetch = asyncio.create_task(consumer.committed(tp))
        await asyncio.sleep(1.5)
        assert not fetch.done(), "the stable fetch answered while the transaction holding the offset was open"
        assert _unstable_here() > unstable_before  # asked, told "unstable", asking again

        await producer.commit_transaction()
        assert await asyncio.wait_for(fetch, 15) == GROUP_OFFSET_PENDING
    finally:
        await consumer.stop()
        await producer.stop()


def _unstable_here() -> float:
    return REGISTRY.get_sample_value("crownstream_unstable_offset_fetches_total") or 0.0


def _unstable_fetches(url: str) -> float:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    found = re.findall(r"^crownstream_unstable_offset_fetches_total ([0-9.e+]+)$", text, re.M)
    return float(found[0]) if found else 0.0


def _events_of(tournament: str) -> list[dict]:
    return [e for e in demo_tournament(tournament, seed=5, br_matches=3) if e.get("stage_id") != "group-a"]


def _same_partition_tournament(partition: int, partitions: int) -> str:
    return next(t for i in range(1000) if partition_for(t := f"sentinel-cup-{i}", partitions) == partition)


@pytest.mark.slow
async def test_a_worker_assigned_while_its_partition_offsets_are_pending_does_not_reprocess(
    settings, topics, start_worker
):
    """A previous owner processed a tournament's events and committed their offsets in a transaction whose
    markers are not written yet when the worker is assigned the partitions. The worker must wait, start after
    those events, and never apply them (their outputs were the previous owner's to commit)."""
    records = [event_record(validate(e), settings) for e in _events_of("pending-cup")]
    ends: dict[TopicPartition, int] = {}
    previous_owner = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        transactional_id=f"{settings.app_id}-previous-owner",
        transaction_timeout_ms=300_000,  # open while the worker starts, however slow the machine
    )
    await previous_owner.start()
    try:
        await previous_owner.begin_transaction()
        for r in records:
            meta = await previous_owner.send_and_wait(r.topic, value=r.value, key=r.key, headers=r.headers)
            ends[TopicPartition(meta.topic, meta.partition)] = meta.offset + 1
        await previous_owner.send_offsets_to_transaction(ends, settings.app_id)

        worker = start_worker(wait=False)
        try:
            wait_until(lambda: _unstable_fetches(worker.url) >= 1, 120, "the worker told its offsets are unstable")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{worker.tail(80)}") from None
        await previous_owner.commit_transaction()
    finally:
        await previous_owner.stop()
    worker.wait_ready(90)

    # A tournament produced afterwards to the same partition shows the worker has read past the pending events.
    partitions = settings.topic_partitions
    sentinel = _same_partition_tournament(partition_for("pending-cup", partitions), partitions)
    sentinel_events = _events_of(sentinel)
    await produce(settings, sentinel_events)
    expected = expected_standings(sentinel_events, sentinel)
    wait_until(lambda: standings_of(worker.url, sentinel) == expected, 90, "the sentinel tournament's standings")
    answer = httpx.get(f"{worker.url}/tournaments/pending-cup/standings", params={"stage": "br-finals"}, timeout=10)
    assert answer.status_code == 404, f"the previous owner's events were processed again: {answer.text[:300]}"
