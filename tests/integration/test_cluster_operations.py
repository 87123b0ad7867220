"""Operating a consumer group, end to end: standings, notification fan-out and every sink at once.

Three workers take a stream of tournaments and user preferences; while events flow the group is scaled
3 -> 2 (SIGTERM) -> 3, one worker is killed with SIGKILL, and the broker itself is restarted. Afterwards:
- every worker answers every standings query with what a recompute from the events gives;
- ``ranking.changed``, ``standings.finalized`` and payouts are committed exactly once, and are the same
  records an undisturbed run of the same events commits;
- delivery requests are committed once per dedup key, the same set as the undisturbed run's, and the
  receivers (SMTP server, signed-webhook receiver, Discord stand-in, in-app feed) count zero missing and
  zero duplicate deliveries after deduplicating by Message-ID / webhook-id / dedup key.

The broker here is an instance of its own (deploy/kafka.sh with another port and state dir), so that
restarting it cannot disturb anything else using the shared one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from crownstream.devpeers import DiscordStandIn, SmtpPeer, WebhookReceiver
from crownstream.processes import free_port
from crownstream.settings import Settings
from crownstream.sinks import db
from crownstream.streams.admin import ensure_topics
from crownstream.streams.topics import DELIVERIES
from tests.support.kafka_read import read_records
from tests.support.operations import (
    TOURNAMENTS,
    committed_outputs,
    delivered_once,
    expected_standings,
    preferences_events,
    produce,
    standings_of,
    standings_served,
    tournament_events,
    user_ids,
    wire_webhook_endpoints,
)
from tests.support.operations import request_differences as _request_differences
from tests.support.operations import same_outputs as _same_outputs
from tests.support.operations import settled as _settled
from tests.support.services import REPO
from tests.support.sinks import eventually, migrate, sink_worker_overrides
from tests.support.workers import wait_all_ready

# In `make test` (~2.7 min; `make soak` runs it alone). Its failures so far were traced to Faust's recovery, a client
# stuck without brokers after the broker restart (crownstream/engine/kafka_rebootstrap.py), stale records after a seek
# (crownstream/engine/seek_epochs.py) and streams resumed before their seek (crownstream/engine/recovery.py).
# README, Known limits.
pytestmark = [pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(1200)]


@pytest.fixture
def own_kafka(unique_id, tmp_path):
    port, controller = free_port(), free_port()
    state = REPO / ".state" / f"test-kafka-{unique_id}"
    env = {
        **os.environ,
        "CROWNSTREAM_KAFKA_PORT": str(port),
        "CROWNSTREAM_KAFKA_CONTROLLER_PORT": str(controller),
        "CROWNSTREAM_STATE_DIR": str(state),
        "CROWNSTREAM_KAFKA_HEAP": "512m",
    }
    script = str(REPO / "deploy" / "kafka.sh")

    def run(action: str) -> None:
        subprocess.run([script, action], env=env, check=True, capture_output=True, timeout=180)

    run("start")
    try:
        yield f"127.0.0.1:{port}", run
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=180)
        # For tracing a failure record by record (kafka.tools.DumpLogSegments on the stopped broker's logs, the
        # workers' logs beside them): CROWNSTREAM_TEST_KEEP_KAFKA=<dir> keeps both there instead of deleting them.
        keep = os.environ.get("CROWNSTREAM_TEST_KEEP_KAFKA")
        if keep:
            kept = Path(keep) / f"test-kafka-{unique_id}"
            shutil.copytree(state, kept, dirs_exist_ok=True)
            shutil.copytree(tmp_path, kept / "workers", dirs_exist_ok=True)
            print(f"\nbroker data and worker logs kept in {kept}", flush=True)
        shutil.rmtree(state, ignore_errors=True)


#: (wall-clock start, name) of each phase of the scenario, for placing records by their timestamps.
PHASES: list[tuple[float, str]] = []


def phase(what: str) -> None:
    PHASES.append((time.time(), what))
    print(f"[{time.strftime('%H:%M:%S')}] {what}", flush=True)


def phase_at(timestamp_ms: int) -> str:
    """The phase during which a record with this Kafka timestamp (ms) was produced."""
    current = "start"
    for started, name in PHASES:
        if started * 1000 <= timestamp_ms:
            current = name
    return current


async def repeated_requests_report(settings: Settings) -> dict[str, dict]:
    """For the report: per channel, the notification types of the requests committed twice, and the phases in which
    their copies were produced (first copy -> later copy, by record timestamp)."""
    out = {}
    for channel, spec in DELIVERIES.items():
        copies: dict[str, list] = {}
        for record in await read_records(settings.kafka_bootstrap, spec.full_name(settings), settle=1.0):
            copies.setdefault(orjson.loads(record.value)["dedup_key"], []).append(record)
        repeated = {key: sorted(rs, key=lambda r: r.timestamp) for key, rs in copies.items() if len(rs) > 1}
        out[channel] = {
            "types": Counter(orjson.loads(rs[0].value).get("notification_type") for rs in repeated.values()),
            "phases": Counter(
                f"{phase_at(rs[0].timestamp)} -> {phase_at(rs[-1].timestamp)}" for rs in repeated.values()
            ),
        }
    return out


async def test_scale_kill_and_broker_restart_lose_and_duplicate_nothing(
    settings, own_kafka, start_worker, database_url, tmp_path
):
    bootstrap, kafka = own_kafka
    PHASES.clear()
    # 8 partitions: with 4, Faust's sticky assignor may leave a third worker without an active partition.
    settings = settings.model_copy(update={"kafka_bootstrap": bootstrap, "topic_partitions": 8})
    await ensure_topics(settings=settings)
    await migrate(database_url)
    engine = db.create_engine(Settings(database_url=database_url))
    events = tournament_events()
    quarter = len(events) // 4

    with WebhookReceiver() as receiver, SmtpPeer() as smtp, DiscordStandIn(limit=50, per_s=1.0) as discord:
        try:
            await wire_webhook_endpoints(engine, receiver)
            overrides = {
                **sink_worker_overrides(database_url, smtp_port=smtp.port, sink_max_attempts=100),
                "kafka_bootstrap": bootstrap,
                "topic_partitions": 8,
            }
            workers = wait_all_ready([start_worker(wait=False, **overrides) for _ in range(3)])  # side by side
            await produce(settings, preferences_events(discord), pace=0)
            last = sorted(user_ids())[-1]
            await eventually(
                lambda: (
                    httpx.get(
                        f"{workers[0].url}/users/{last}/preferences",
                        timeout=10,
                        headers={"Authorization": "Bearer test-token"},
                    )
                    .json()
                    .get("defaults")
                    is False
                ),
                timeout=90,
                what="preferences applied",
            )

            phase("first quarter, 3 workers")
            await produce(settings, events[:quarter])
            phase("scale 3 -> 2")
            workers[2].stop()  # scale 3 -> 2: SIGTERM, commit and leave
            await produce(settings, events[quarter : 2 * quarter])
            phase("scale 2 -> 3")
            workers.append(start_worker(**overrides))  # 2 -> 3
            await produce(settings, events[2 * quarter : 3 * quarter - quarter // 2])
            phase("kill -9")
            workers[0].kill()  # SIGKILL mid-stream
            await produce(settings, events[3 * quarter - quarter // 2 : 3 * quarter])
            phase("broker restart")
            await asyncio.to_thread(kafka, "restart")  # the broker goes away and comes back
            phase("broker back")
            await produce(settings, events[3 * quarter :])
            alive = [w for w in workers if w.alive()]
            assert len(alive) == 2

            phase("waiting for standings")
            await standings_served(events, alive)

            async def finished() -> Counter | None:
                outputs = await committed_outputs(settings)
                kinds = Counter(kind for kind, _ in outputs)
                done = kinds["standings.finalized"] >= len(TOURNAMENTS) and kinds["payout.distributed"] >= 9
                return outputs if done else None

            crash_outputs = await eventually(finished, timeout=120, interval=2, what="final placements and payouts")
            assert not {i: n for i, n in crash_outputs.items() if n > 1}, "outputs committed twice"
            by_type = Counter(kind for kind, _ in crash_outputs)
            assert by_type["standings.finalized"] == len(TOURNAMENTS)
            assert by_type["payout.distributed"] == 3 * len(TOURNAMENTS)
            assert by_type["ranking.changed"] > 0

            phase("waiting for deliveries")
            requested = await eventually(
                lambda: _settled(settings), timeout=120, interval=2, what="delivery requests settled"
            )
            # A request committed twice on a delivery topic is absorbed by the ledger (one row per dedup key): what
            # users get is checked at the receivers below. The count is reported, not hidden: it is a known
            # limitation after a broker restart (README, "Known limits").
            repeated_requests = {
                channel: sum(n - 1 for n in keys.values() if n > 1) for channel, keys in requested.items()
            }

            resends = await delivered_once(engine, requested, smtp, receiver, discord)

            # The same events through one undisturbed worker of another group: the same outputs, the same
            # delivery requests — nothing was lost to the scaling, the kill or the broker restart.
            phase("clean run")
            clean = settings.model_copy(
                update={"app_id": settings.app_id + "-clean", "topic_prefix": settings.topic_prefix + "clean."}
            )
            await ensure_topics(settings=clean)
            clean_worker = start_worker(**{**overrides, "app_id": clean.app_id, "topic_prefix": clean.topic_prefix})
            await produce(clean, preferences_events(discord), pace=0)
            await eventually(
                lambda: (
                    httpx.get(
                        f"{clean_worker.url}/users/{last}/preferences",
                        timeout=10,
                        headers={"Authorization": "Bearer test-token"},
                    )
                    .json()
                    .get("defaults")
                    is False
                ),
                timeout=90,
                what="preferences applied (clean run)",
            )
            await produce(clean, events, pace=0)
            await eventually(
                lambda: standings_of(clean_worker.url, TOURNAMENTS[-1]) == expected_standings(events, TOURNAMENTS[-1]),
                timeout=180,
                what="clean run",
            )
            await eventually(
                lambda: _same_outputs(clean, crash_outputs), timeout=120, interval=2, what="clean run's outputs"
            )
            clean_requested = await eventually(
                lambda: _settled(clean), timeout=120, interval=2, what="clean run's delivery requests"
            )
            if any(set(clean_requested[c]) != set(requested[c]) for c in DELIVERIES):
                raise AssertionError(await _request_differences(settings, clean, requested))
            print(
                f"\nscale 3->2->3, kill -9, broker restart: {len(events)} events, "
                f"{len(crash_outputs)} standings outputs, deliveries "
                f"{ {c: len(k) for c, k in requested.items()} }, duplicates 0, missing 0, raw re-sends {resends}, "
                f"requests committed twice on the topics (absorbed by the ledger) {repeated_requests}, "
                f"by type and phase {await repeated_requests_report(settings)}"
            )
        finally:
            await engine.dispose()
