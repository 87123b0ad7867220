"""``crownstream produce`` against the real broker."""

from __future__ import annotations

import subprocess

import orjson
from aiokafka import AIOKafkaConsumer

from crownstream.processes import settings_env
from crownstream.schemas.examples import example
from crownstream.streams.topics import TOURNAMENT_EVENTS
from tests.support.workers import CROWNSTREAM


async def test_produce_file_with_errors_lists_them_and_exits_non_zero(settings, topics, tmp_path):
    path = tmp_path / "events.jsonl"
    good = [example("match.started", event_id=f"g{n}", match_id=f"m{n}") for n in range(5)]
    lines = [orjson.dumps(e) for e in good[:3]] + [b"{broken"] + [orjson.dumps(e) for e in good[3:]]
    lines.append(orjson.dumps(example("match.started", event_id="late", occurred_at="2026-01-01T00:00:00")))
    path.write_bytes(b"\n".join(lines) + b"\n")

    proc = subprocess.run(
        [CROWNSTREAM, "produce", str(path)],
        capture_output=True,
        text=True,
        env={**settings_env(settings), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "line 4: not valid JSON" in proc.stderr
    assert "line 7: invalid match.started: occurred_at: Input should have timezone info" in proc.stderr
    assert "5 produced, 2 rejected" in proc.stdout

    consumer = AIOKafkaConsumer(
        TOURNAMENT_EVENTS.full_name(settings),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: list[str] = []
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=300)
            seen += [orjson.loads(r.value)["event_id"] for rs in batch.values() for r in rs]
            if len(seen) >= 5:
                break
    finally:
        await consumer.stop()
    assert sorted(seen) == [f"g{n}" for n in range(5)]


def test_produce_valid_file_exits_zero(settings, topics, tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_bytes(orjson.dumps(example("bracket.ready")) + b"\n")
    proc = subprocess.run(
        [CROWNSTREAM, "produce", str(path)],
        capture_output=True,
        text=True,
        env={**settings_env(settings), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 produced, 0 rejected" in proc.stdout


async def test_unreachable_broker_is_a_clear_error(settings):
    import pytest

    from crownstream.processes import free_port
    from crownstream.streams.errors import BrokerUnavailable
    from crownstream.streams.producer import EventProducer

    dead = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    with pytest.raises(BrokerUnavailable, match=r"cannot reach the Kafka broker .* deploy/kafka\.sh start"):
        async with EventProducer(dead, request_timeout_ms=2000):
            pass
