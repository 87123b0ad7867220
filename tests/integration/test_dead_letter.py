"""Bad input against the real broker: every malformed record lands in the DLQ with its reason, every valid
one is processed, none is lost, and the worker keeps running."""

from __future__ import annotations

import asyncio
import random

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from crownstream.schemas.examples import example
from crownstream.streams.dlq_ops import read_dead_letters, replay_dead_letters
from crownstream.streams.topics import TOURNAMENT_EVENTS
from tests.integration.test_worker import wait_for

MALFORMED = [
    (b"{truncated", "not_json"),
    (b"[]", "not_object"),
    (orjson.dumps({"type": "match.exploded", "event_id": "x1"}), "unknown_type"),
    (orjson.dumps({**example("match.started", event_id="v9"), "schema_version": 9}), "unsupported_version"),
    (orjson.dumps({k: v for k, v in example("match.started", event_id="m1").items() if k != "match_id"}), "invalid"),
    (b"", "empty"),
    (b'{"type":"match.started","pad":"' + b"x" * 600_000 + b'"}', "oversize"),
]


async def test_malformed_records_go_to_the_dlq_and_valid_ones_are_processed(settings, topics, start_worker):
    worker = start_worker()
    topic = TOURNAMENT_EVENTS.full_name(settings)
    valid = [
        orjson.dumps(example("match.started", event_id=f"ok-{n}", tournament_id="t-dlq", match_id=f"m{n}"))
        for n in range(40)
    ]
    bad = [value for value, _ in MALFORMED] * 3
    stream = [(v, True) for v in valid] + [(v, False) for v in bad]
    random.Random(7).shuffle(stream)

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_request_size=2_000_000)
    await producer.start()
    try:
        for value, _ in stream:
            await producer.send(topic, value=value, key=b"t-dlq")
        await producer.flush()
    finally:
        await producer.stop()

    def processed():
        r = httpx.get(f"{worker.url}/tournaments/t-dlq/activity", timeout=5)
        return r.status_code == 200 and r.json()["counts"].get("match.started") == len(valid)

    wait_for(processed, timeout=60)

    letters = []

    async def collect():
        letters[:] = await read_dead_letters(settings=settings)
        return len(letters) >= len(bad)

    # DLQ records are written in the transaction of the input partition, so they become visible to a
    # read_committed reader when the worker commits (every few seconds), not when they are sent.
    deadline = asyncio.get_running_loop().time() + 45
    while not await collect() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110  (polls the broker)
        await asyncio.sleep(0.5)
    assert len(letters) == len(bad), f"expected {len(bad)} dead letters, got {len(letters)}"
    expected_codes = sorted(code for _, code in MALFORMED) * 3
    assert sorted(letter.code for letter in letters) == sorted(expected_codes)
    for letter in letters:
        assert letter.reason, letter
        assert letter.source_topic == topic
        assert letter.source_offset >= 0 and letter.agent == "tournament-events"
    # Original bytes are kept byte for byte so a replay reproduces the record exactly.
    assert {bytes(letter.value) for letter in letters} == {v for v, _ in MALFORMED}

    metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
    dlq_total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("crownstream_dead_letters_total{")
    )
    assert dlq_total == len(bad)
    assert worker.alive()

    # After a "fix" (here: nothing changed), a dry-run replay selects by code.
    assert await replay_dead_letters(code="not_json", dry_run=True, settings=settings) == 3
