"""Brokers failing under a running pipeline (#19): three brokers (deploy/kafka-cluster.sh), every topic replicated
3 times with min.insync.replicas 2, three workers, tournaments and user preferences streaming in. While events
flow, and while transactions are open (listed from the coordinators just before each kill):

1. kill -9 of the broker that leads the busiest input partitions, then it comes back;
2. kill -9 of the broker that is the group's coordinator and transaction coordinator of some of its partitions'
   transactions, then it comes back;
3. a rolling restart of all three brokers (SIGTERM, start, wait until every replica is in sync, next).

Afterwards, as test_cluster_operations.py checks after its worker kills and broker restart:
- every worker answers every standings query with what a recompute from the events gives;
- standings outputs are committed once each (counted on the output topic, read_committed) and are the records
  an undisturbed run of the same events commits; delivery requests are the undisturbed run's;
- the receivers (SMTP, signed webhooks, Discord stand-in, in-app feed) count 0 lost and 0 duplicate deliveries.
Measured: the longest gap between a worker's answers to a standings query polled throughout, and per disruption
the time from the broker's death (or stop) to the first event processed again on a partition it led: a probe
event sent at that moment to such a partition, until a worker's activity view counts it.

Not in `make test` (about 5 minutes a run, 5 runs): `make failover` runs it (and .ci/run after `make test`);
CROWNSTREAM_FAILOVER_RUNS sets the number of runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient, CoordinationType

from crownstream.devpeers import DiscordStandIn, SmtpPeer, WebhookReceiver
from crownstream.schemas.examples import example
from crownstream.settings import Settings
from crownstream.sinks import db
from crownstream.streams.admin import ensure_topics
from crownstream.streams.partitioning import partition_for
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import DELIVERIES, INPUT_TOPICS, TOURNAMENT_EVENTS
from tests.support.operations import (
    STAGE,
    committed_outputs,
    delivered_once,
    expected_standings,
    preferences_applied,
    preferences_events,
    request_differences,
    settled,
    standings_of,
    standings_served,
    tournament_events,
    wire_webhook_endpoints,
)
from tests.support.services import kafka_cluster
from tests.support.sinks import eventually, migrate, sink_worker_overrides
from tests.support.workers import Worker, wait_all_ready

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.failover, pytest.mark.timeout(1500)]

RUNS = int(os.environ.get("CROWNSTREAM_FAILOVER_RUNS", "5"))
TOURNAMENTS = ("cup-a", "cup-b", "cup-c", "cup-d", "cup-e", "cup-f")  # spread over the 8 partitions
PARTITIONS = 8
#: How long a killed broker stays down: past the controller's broker session timeout (9 s), so that it is fenced
#: and its partitions' leadership moves, as after a real crash.
DOWN_S = 12.0
#: Events per second while a broker dies and comes back.
EVENTS_PER_S = 3.0
#: The undisturbed run's committed outputs and delivery requests (the same events every run): made once.
UNDISTURBED: dict[str, object] = {}


@dataclass
class Disruption:
    what: str
    node: int
    open_transactions: int = 0  # Ongoing transactions listed just before the kill (of this test's app)
    coordinated_there: int = 0  # of which the killed broker coordinated
    recovery_s: float | None = None  # death (or stop) -> the probe event processed


@dataclass
class Answers:
    """A standings query polled on every worker for the whole scenario: when each answered (HTTP 200)."""

    urls: list[str]
    tournament: str
    ok: dict[str, list[float]] = field(default_factory=dict)
    failed: Counter = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Answers:
        self._thread = threading.Thread(target=self._poll, name="answers", daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                for url in self.urls:
                    try:
                        r = client.get(f"{url}/tournaments/{self.tournament}/standings", params={"stage": STAGE})
                        if r.status_code == 200:
                            self.ok.setdefault(url, []).append(time.monotonic())
                        else:
                            self.failed[r.status_code] += 1
                    except httpx.HTTPError as exc:
                        self.failed[type(exc).__name__] += 1
                self._stop.wait(0.2)

    def stop(self) -> dict[str, float]:
        """Per worker, the longest gap between two answers (seconds)."""
        self._stop.set()
        self._thread.join(10)
        return {url: max((b - a for a, b in pairwise(times)), default=float("inf")) for url, times in self.ok.items()}


def list_transactions() -> list[tuple[str, int, str]]:
    """(transactional id, coordinator, state) of every transaction the coordinators know (a Java admin client:
    ``deploy/kafka-cluster.sh transactions``)."""
    rows = []
    for line in kafka_cluster("transactions", timeout=60).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            rows.append((parts[0], int(parts[1]), parts[2]))
    return rows


async def leaders(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        return {
            (t["topic"], p["partition"]): p["leader"]
            for t in await admin.describe_topics(topics)
            for p in t["partitions"]
        }
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        return {(tp.topic, tp.partition): n for tp, n in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def busiest_leader(settings: Settings) -> tuple[int, int]:
    """The broker leading the input partitions with the most records, and its busiest tournament-events
    partition."""
    topics = [spec.full_name(settings) for spec in INPUT_TOPICS]
    led = await leaders(settings.kafka_bootstrap, topics)
    sizes = await end_offsets(settings.kafka_bootstrap, topics)
    load = Counter()
    for tp, leader in led.items():
        load[leader] += sizes.get(tp, 0)
    node = load.most_common(1)[0][0]
    events_topic = TOURNAMENT_EVENTS.full_name(settings)
    partition = max(
        (p for (t, p), leader in led.items() if t == events_topic and leader == node),
        key=lambda p: sizes[(events_topic, p)],
    )
    return node, partition


async def transaction_ids(workers: list[Worker], app_id: str) -> dict[str, int]:
    """The workers' transactional ids of tournament-events partitions, by partition (Faust's ``{app id}-{topic
    group}-{partition}``, the group as the workers report it)."""
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{workers[0].url}/ops/assignment", headers=workers[0].staff_headers)
    groups = r.json()["transaction_groups"]
    return {
        p: f"{app_id}-{groups[topic]}-{p}"
        for topic in groups
        if topic.endswith("tournament-events")
        for p in range(PARTITIONS)
    }


async def coordinators(bootstrap: str, app_id: str, tids: dict[int, str]) -> tuple[int, dict[int, int]]:
    """The group's coordinator, and each partition's transaction coordinator."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        group = await client.coordinator_lookup(CoordinationType.GROUP, app_id)
        return group, {p: await client.coordinator_lookup(CoordinationType.TRANSACTION, tid) for p, tid in tids.items()}
    finally:
        await client.close()


def probe_tournament(partition: int, n: int) -> str:
    """A tournament id of its own whose events land in ``partition`` of tournament-events."""
    for i in range(10_000):
        candidate = f"probe-{n}-{i}"
        if partition_for(candidate, PARTITIONS) == partition:
            return candidate
    raise AssertionError(f"no probe key for partition {partition}")


async def probe(settings: Settings, workers: list[Worker], partition: int, n: int, since: float) -> float:
    """Send an event to ``partition`` (its leader just died) and wait until a worker's activity view counts it:
    seconds from ``since``."""
    tournament = probe_tournament(partition, n)
    async with EventProducer(settings) as producer:
        await producer.send(
            example("match.started", event_id=f"probe-{n}", tournament_id=tournament, match_id=f"probe-{n}")
        )

    async def counted() -> bool:
        async with httpx.AsyncClient(timeout=5) as client:
            for w in workers:
                try:
                    r = await client.get(f"{w.url}/tournaments/{tournament}/activity")
                except httpx.HTTPError:
                    continue
                if r.status_code == 200 and sum(r.json()["counts"].values()) >= 1:
                    return True
        return False

    await eventually(counted, timeout=180, interval=0.1, what=f"probe event {n} on partition {partition} processed")
    return time.monotonic() - since


async def produce_paced(settings: Settings, events: list[dict], per_s: float = EVENTS_PER_S) -> None:
    async with EventProducer(settings) as producer:
        for event in events:
            await producer.send(event)
            await producer.flush()
            await asyncio.sleep(1 / per_s)


def node(action: str, n: int) -> None:
    kafka_cluster(action, str(n), timeout=240)


@pytest.fixture
def cluster_settings(settings: Settings, kafka_cluster_bootstrap_servers: str):
    yield settings.model_copy(
        update={
            "kafka_bootstrap": kafka_cluster_bootstrap_servers,
            "topic_replication": 3,
            "topic_partitions": PARTITIONS,
        }
    )
    # Whatever happened, every broker runs again for the next run (and the topics go).
    for n in (1, 2, 3):
        node("start-node", n)
    from tests.support.kafka_cleanup import delete_test_topics

    delete_test_topics(kafka_cluster_bootstrap_servers, (settings.topic_prefix, f"{settings.app_id}-"))


@pytest.mark.parametrize("run", range(1, RUNS + 1))
async def test_brokers_killed_and_restarted_lose_and_duplicate_nothing(
    run, cluster_settings, start_worker, database_url
):
    settings = cluster_settings
    kafka_cluster("wait-in-sync")
    await ensure_topics(settings=settings)
    await migrate(database_url)
    engine = db.create_engine(Settings(database_url=database_url))
    events = tournament_events(TOURNAMENTS)
    slices = [events[len(events) * i // 8 : len(events) * (i + 1) // 8] for i in range(8)]
    disruptions: list[Disruption] = []
    started = time.monotonic()

    with WebhookReceiver() as receiver, SmtpPeer() as smtp, DiscordStandIn(limit=50, per_s=1.0) as discord:
        try:
            await wire_webhook_endpoints(engine, receiver)
            overrides = {
                **sink_worker_overrides(database_url, smtp_port=smtp.port, sink_max_attempts=100),
                "kafka_bootstrap": settings.kafka_bootstrap,
                "topic_partitions": PARTITIONS,
                "topic_replication": 3,
            }
            workers = wait_all_ready([start_worker(wait=False, **overrides) for _ in range(3)], timeout=180)
            await produce_paced(settings, preferences_events(discord), per_s=1000)
            await preferences_applied(workers[0].url)
            await produce_paced(settings, slices[0], per_s=20)
            answers = Answers([w.url for w in workers], TOURNAMENTS[0]).start()

            async def kill(what: str, victim: int, partition: int) -> None:
                """Kill -9 (or, for a rolling restart, stop) broker ``victim``, probe ``partition`` until an event
                is processed again, bring the broker back and wait until every replica is in sync."""
                d = Disruption(what, victim)
                listed = [t for t in await asyncio.to_thread(list_transactions) if t[0].startswith(settings.app_id)]
                d.open_transactions = sum(1 for _, _, state in listed if state == "Ongoing")
                d.coordinated_there = sum(1 for _, c, state in listed if state == "Ongoing" and c == victim)
                since = time.monotonic()
                await asyncio.to_thread(node, "kill-node" if what.startswith("kill") else "stop-node", victim)
                d.recovery_s = await probe(settings, workers, partition, len(disruptions) + 1, since)
                disruptions.append(d)
                print(f"\n[run {run}] {d}", flush=True)
                if what.startswith("kill"):
                    await asyncio.sleep(max(0.0, DOWN_S - (time.monotonic() - since)))
                await asyncio.to_thread(node, "start-node", victim)
                await asyncio.to_thread(kafka_cluster, "wait-in-sync")

            # 1. The leader of the busiest input partitions, kill -9, events flowing.
            victim, partition = await busiest_leader(settings)
            await asyncio.gather(produce_paced(settings, slices[1]), kill("kill -9 busiest leader", victim, partition))
            await produce_paced(settings, slices[2], per_s=10)

            # 2. The group coordinator, also the transaction coordinator of some of the partitions' transactions.
            tids = await transaction_ids(workers, settings.app_id)
            group, by_partition = await coordinators(settings.kafka_bootstrap, settings.app_id, tids)
            theirs = [p for p, c in by_partition.items() if c == group]
            assert theirs, f"the group coordinator {group} coordinates none of {by_partition}: no broker is both"
            await asyncio.gather(
                produce_paced(settings, slices[3]), kill("kill -9 group+transaction coordinator", group, theirs[0])
            )
            await produce_paced(settings, slices[4], per_s=10)

            # 3. A rolling restart: each broker stopped (SIGTERM), started, caught up, then the next.
            for n, part in zip((1, 2, 3), slices[5:8], strict=True):
                led = await leaders(settings.kafka_bootstrap, [TOURNAMENT_EVENTS.full_name(settings)])
                # A broker killed before leads nothing until the preferred-leader election (every 5 minutes):
                # then any partition is probed (its leader stays; the group and transaction coordinators may move).
                partition = min((p for (_, p), leader in led.items() if leader == n), default=0)
                await asyncio.gather(produce_paced(settings, part), kill(f"rolling restart {n}", n, partition))
            gaps = answers.stop()
            disturbed_s = time.monotonic() - started

            # Standings: every worker answers with the recompute of the events.
            await standings_served(events, workers, TOURNAMENTS)
            assert all(w.alive() for w in workers)

            async def finished(run_settings: Settings) -> Counter | None:
                outputs = await committed_outputs(run_settings)
                kinds = Counter(kind for kind, _ in outputs)
                done = kinds["standings.finalized"] >= len(TOURNAMENTS) and kinds["payout.distributed"] >= 3 * len(
                    TOURNAMENTS
                )
                return outputs if done else None

            outputs = await eventually(
                lambda: finished(settings), timeout=180, interval=2, what="final placements and payouts"
            )
            assert not {i: n for i, n in outputs.items() if n > 1}, "outputs committed twice"
            by_type = Counter(kind for kind, _ in outputs)
            assert by_type["standings.finalized"] == len(TOURNAMENTS)
            assert by_type["payout.distributed"] == 3 * len(TOURNAMENTS)

            requested = await eventually(
                lambda: settled(settings), timeout=180, interval=2, what="delivery requests settled"
            )
            repeated_requests = {c: sum(n - 1 for n in keys.values() if n > 1) for c, keys in requested.items()}
            resends = await delivered_once(engine, requested, smtp, receiver, discord)
            report = {
                "run": run,
                "events": len(events),
                "standings_outputs": len(outputs),
                "deliveries": {c: len(k) for c, k in requested.items()},
                "lost": 0,
                "duplicates": 0,
                "raw_resends": resends,
                "requests_committed_twice": repeated_requests,
                "longest_answer_gap_s": {url.rsplit(":", 1)[1]: round(g, 2) for url, g in gaps.items()},
                "answers": {url.rsplit(":", 1)[1]: len(times) for url, times in answers.ok.items()},
                "failed_queries": dict(answers.failed),
                "disruptions": [
                    {
                        "what": d.what,
                        "node": d.node,
                        "open_transactions": d.open_transactions,
                        "coordinated_by_it": d.coordinated_there,
                        "to_first_event_processed_s": round(d.recovery_s or -1, 2),
                    }
                    for d in disruptions
                ],
                "scenario_s": round(disturbed_s, 1),
            }
            print(f"\nfailover run {run}, before the comparison with the undisturbed run: {json.dumps(report)}")

            # The undisturbed run: the same events through one worker of another group, once per session.
            if not UNDISTURBED:
                clean = settings.model_copy(
                    update={"app_id": settings.app_id + "-clean", "topic_prefix": settings.topic_prefix + "clean."}
                )
                await ensure_topics(settings=clean)
                clean_worker = start_worker(**{**overrides, "app_id": clean.app_id, "topic_prefix": clean.topic_prefix})
                await produce_paced(clean, preferences_events(discord), per_s=1000)
                await preferences_applied(clean_worker.url)
                await produce_paced(clean, events, per_s=1000)
                for t in TOURNAMENTS:
                    await eventually(
                        lambda t=t: standings_of(clean_worker.url, t) == expected_standings(events, t),
                        timeout=180,
                        what=f"undisturbed run's standings of {t}",
                    )
                UNDISTURBED.update(
                    settings=clean,
                    outputs=await eventually(
                        lambda: finished(clean), timeout=180, interval=2, what="undisturbed run's outputs"
                    ),
                    requested=await eventually(
                        lambda: settled(clean), timeout=180, interval=2, what="undisturbed run's delivery requests"
                    ),
                )
            clean_outputs = UNDISTURBED["outputs"]
            only_here, only_there = outputs - clean_outputs, clean_outputs - outputs
            assert outputs == clean_outputs, (
                "standings outputs differ from the undisturbed run's: only here "
                f"{sorted(only_here.items())[:20]}, only there {sorted(only_there.items())[:20]}"
            )
            clean_requested = UNDISTURBED["requested"]
            if any(set(clean_requested[c]) != set(requested[c]) for c in DELIVERIES):
                raise AssertionError(await request_differences(settings, UNDISTURBED["settings"], requested))
            report["same_as_undisturbed"] = True
            print(f"\nfailover run {run}: {json.dumps(report)}", flush=True)
            path = os.environ.get("CROWNSTREAM_FAILOVER_REPORT")
            if path:
                with open(path, "a") as f:
                    f.write(json.dumps(report) + "\n")
            assert max(gaps.values()) < 60, f"a worker went a minute without answering: {gaps}"
            assert all(d.open_transactions > 0 for d in disruptions if d.what.startswith("kill")), disruptions
        finally:
            await engine.dispose()
