"""End to end: ``match.completed`` produced through the producer API (``EventProducer``) -> the standings agent ->
``ranking.changed`` -> notification fan-out -> a webhook delivery request -> the ledger -> the webhook sink -> a
loopback receiver that verifies every signature. p50/p99 at a steady load of team results.

One real ``crownstream worker`` (every agent and sink, exactly_once, the ledger in a fresh PostgreSQL database),
its commit interval from CROWNSTREAM_COMMIT_INTERVAL_S like any worker's. The load is that of bench/standings.py's
result -> query-visible row: lobbies of 20 teams produced at a steady rate over 4 tournaments of 1000 teams.

Who is notified: one user on each of every 20th team (team-0000, team-0020 …, so each lobby holds one of them),
subscribed to ranking.changed on the webhook channel, each with a signed endpoint of their own. Every
notification the receiver accepts is a sample: the match that triggered it is named in its source event id
(ranking.changed ids derive from the triggering event, agents/standings.py), so its latency is the time from that
match's send to the notification's verified arrival. What is expected is what the worker committed to the
standings topic for those teams; one never received counts as slower than every other (p99 a lower bound).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiohttp import web
from sqlalchemy import text

from bench.common import BOOTSTRAP, Row, fresh_database, percentile
from bench.standings import TEAMS_PER_TOURNAMENT, events_in, lobby, stage_config
from crownstream.devpeers import WebhookReceiver
from crownstream.processes import free_port
from crownstream.schemas.examples import example
from crownstream.settings import Settings
from crownstream.sinks import db
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.streams.admin import ensure_topics
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import STANDINGS_EVENTS, TOURNAMENT_EVENTS
from tests.support.kafka_read import read_topics_to_end
from tests.support.workers import Worker

STAFF_TOKEN = "bench-latency-staff-token-of-32-characters"
GOAL_P99_S = 1.0
SETTLE_S = 180.0  # after the load: how long notifications may still arrive before they count as never received


class TimedReceiver(WebhookReceiver):
    """The tests' signature-verifying receiver, noting when each notification first arrived verified and
    accepted (a retry or a duplicate does not move it)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}  # source event id -> time.perf_counter() of its first accepted delivery

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        response = await super()._handle(request)
        if response.status == 204:
            with self.lock:
                body = self.received[request.match_info["name"]].bodies[request.headers["webhook-id"]]
                self.arrived.setdefault(body["data"]["source_event_id"], at)
        return response

    def arrived_ids(self) -> set[str]:
        with self.lock:
            return set(self.arrived)


def sampled_teams(lobby_size: int, teams: int = TEAMS_PER_TOURNAMENT) -> list[str]:
    """Every ``lobby_size``-th team: lobbies rotate through the field in steps of ``lobby_size`` (bench.standings
    ``lobby``), so each lobby holds exactly one of them."""
    return [f"team-{i:04d}" for i in range(0, teams, lobby_size)]


def trigger_of(ranking_event_id: str) -> str:
    """The match event a ranking.changed id was derived from (``<trigger>:rank:<team>``, agents/standings.py)."""
    return ranking_event_id.rsplit(":rank:", 1)[0]


@dataclass
class Latencies:
    """Per expected notification: seconds from its match's send to its arrival (inf: never arrived)."""

    seconds: list[float]
    missing: int
    duplicates: int
    bad_signatures: int

    @property
    def p50_ms(self) -> float:
        return percentile(self.seconds, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.seconds, 0.99) * 1000


def latencies(sent_at: dict[str, float], expected: set[str], receiver: TimedReceiver) -> Latencies:
    with receiver.lock:
        arrived = dict(receiver.arrived)
    seconds = [arrived[i] - sent_at[trigger_of(i)] if i in arrived else float("inf") for i in sorted(expected)]
    duplicates = sum(n - 1 for n in receiver.successes_by_id().values() if n > 1)
    return Latencies(seconds, len(expected - set(arrived)), duplicates, receiver.bad_signatures())


async def register_endpoints(database_url: str, receiver: TimedReceiver, teams: list[str]) -> dict[str, str]:
    """One user per team with a signed webhook endpoint at the receiver; returns user -> team."""
    engine = db.create_engine(Settings(database_url=database_url))
    users = {f"lat-user-{team}": team for team in teams}
    try:
        for user in users:
            # The receiver must know the secret before the endpoint exists: create it, then point the hook at it.
            endpoint, secret = await create_endpoint(engine, user, "http://127.0.0.1/placeholder", allow_private=True)
            url = receiver.add(user, secret)
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": url, "i": endpoint.id}
                )
    finally:
        await engine.dispose()
    return users


def _stuck(worker: Worker, what: str) -> TimeoutError:
    # The worker's folder goes with the run: what it logged (warnings and up) goes in the message.
    return TimeoutError(f"{what}; the worker's log ends with:\n{worker.tail(60)}")


async def _wait(check, timeout: float, what: str, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise _stuck(worker, f"{what} not done within {timeout:.0f} s")
        await asyncio.sleep(0.3)


async def subscribe(settings: Settings, worker: Worker, receiver: TimedReceiver, users: dict[str, str]) -> None:
    """Preferences first (ranking and roster changes on the webhook channel only, every ranking change: the catalog's
    throttle would fold most of a sampled team's changes under load, and each is a sample), then the rosters: a
    roster notification arriving at each user's hook proves that both are applied before the load starts."""
    async with EventProducer(settings) as producer:
        for user in users:
            prefs = {
                "types": {"ranking.changed": ["webhook"], "roster.changed": ["webhook"]},
                "unthrottled_types": ["ranking.changed"],
            }
            await producer.send(
                example("preferences.updated", event_id=f"lat-prefs-{user}", user_id=user, preferences=prefs)
            )
    auth = {"Authorization": f"Bearer {settings.staff_token}"}
    async with httpx.AsyncClient(timeout=30, headers=auth) as client:
        for user in users:

            async def applied(user: str = user) -> bool:
                r = await client.get(f"{worker.url}/users/{user}/preferences")
                return r.status_code == 200 and not r.json()["defaults"]

            await _wait(applied, 90, f"the preferences of {user}", worker)
    rosters = {f"lat-roster-{team}": (team, user) for user, team in users.items()}
    async with EventProducer(settings) as producer:
        for event_id, (team, user) in rosters.items():
            await producer.send(example("roster.changed", event_id=event_id, team_id=team, added=[user], removed=[]))

    async def notified() -> bool:
        return set(rosters) <= receiver.arrived_ids()

    await _wait(notified, 90, "the roster notifications", worker)


async def expected_notifications(settings: Settings, teams: set[str], tournaments: set[str]) -> set[str]:
    """The ranking.changed ids the worker committed for ``teams`` in ``tournaments``: one notification each."""
    topic = STANDINGS_EVENTS.full_name(settings)
    records = (await read_topics_to_end(settings.kafka_bootstrap, [topic]))[topic]
    return {
        r["event_id"]
        for r in records
        if r.get("type") == "ranking.changed" and r["team_id"] in teams and r["tournament_id"] in tournaments
    }


async def produce_load(
    settings: Settings, names: list[str], lobbies_per_s: int, seconds: float, lobby_size: int
) -> tuple[dict[str, float], float]:
    """``lobbies_per_s`` match.completed lobbies a second, round-robin over ``names``, each sent when due (a late
    one is sent at once, not skipped). Returns each match's send time by event id, and the load's duration."""
    sent_at: dict[str, float] = {}
    async with EventProducer(settings, linger_ms=0) as producer:
        for name in names:
            await producer.send(stage_config(name))
        await producer.flush()
        total = int(lobbies_per_s * seconds)
        started = time.perf_counter()
        for n in range(total):
            delay = started + n / lobbies_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = lobby(names[n % len(names)], n // len(names), lobby_size)
            sent_at[event["event_id"]] = time.perf_counter()
            await producer.send(event)
        await producer.flush()
        return sent_at, time.perf_counter() - started


async def settle(
    settings: Settings, worker: Worker, receiver: TimedReceiver, lobbies: int, teams: set[str], names: set[str]
) -> set[str]:
    """Until the worker has folded every lobby and committed its outputs, and every notification expected from
    them has arrived (or SETTLE_S passed: the rest count as never received). Returns what was expected."""
    topic = TOURNAMENT_EVENTS.full_name(settings)
    deadline = time.monotonic() + SETTLE_S
    folded_at: float | None = None
    expected: set[str] = set()
    while time.monotonic() < deadline:
        if folded_at is None and await asyncio.to_thread(events_in, worker.url, topic, "match.completed") >= lobbies:
            folded_at = time.monotonic()
        # Outputs of the last lobbies are committed up to one commit interval after they were folded.
        if folded_at is not None and time.monotonic() > folded_at + 2 * settings.commit_interval_s + 1:
            expected = await expected_notifications(settings, teams, names)
            if expected <= receiver.arrived_ids():
                return expected
        await asyncio.sleep(1)
    if folded_at is None:
        raise _stuck(worker, f"the worker did not fold {lobbies} lobbies within {SETTLE_S:.0f} s")
    return expected or await expected_notifications(settings, teams, names)


async def run(
    run_id: str,
    *,
    results_per_s: int = 1000,
    seconds: float = 10.0,
    lobby_size: int = 20,
    tournaments: int = 4,
    commit_interval_s: float | None = None,
) -> list[Row]:
    lobbies_per_s = max(1, results_per_s // lobby_size)
    names = [f"lat-{i}" for i in range(tournaments)]
    teams = sampled_teams(lobby_size)
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database("bench_lat") as database_url:
            await asyncio.to_thread(db.upgrade, database_url)  # Alembic runs an event loop of its own
            settings = Settings(
                app_id=f"bench-{run_id}-lat",
                topic_prefix=f"bench-{run_id}-lat.",
                topic_partitions=4,
                data_dir=tmp,
                web_port=free_port(),
                log_json=False,
                log_level="warning",
                kafka_bootstrap=BOOTSTRAP,
                database_url=database_url,
                dev_mode=True,
                staff_token=STAFF_TOKEN,
                sink_allow_private_targets=True,  # the receiver is on 127.0.0.1
                **({"commit_interval_s": commit_interval_s} if commit_interval_s else {}),
            )
            await ensure_topics(settings=settings)
            with TimedReceiver() as receiver:
                users = await register_endpoints(database_url, receiver, teams)
                worker = Worker(settings, Path(tmp) / "worker.log").start()
                try:
                    await asyncio.to_thread(worker.wait_ready, 120)
                    await subscribe(settings, worker, receiver, users)
                    sent_at, load_seconds = await produce_load(settings, names, lobbies_per_s, seconds, lobby_size)
                    expected = await settle(settings, worker, receiver, len(sent_at), set(teams), set(names))
                    result = latencies(sent_at, expected, receiver)
                finally:
                    await asyncio.to_thread(worker.stop, 30)
    note = (
        f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms over {len(result.seconds)} notifications "
        f"(goal p99 <= {GOAL_P99_S * 1000:.0f} ms); commit interval {settings.commit_interval_s} s"
    )
    if result.missing:
        note += f"; {result.missing} not received {SETTLE_S:.0f} s after the load"
    if result.duplicates or result.bad_signatures:
        note += f"; ERROR {result.duplicates} duplicates, {result.bad_signatures} bad signatures"
    return [
        Row(
            f"end to end: result -> ranking webhook at {lobbies_per_s * lobby_size} results/s "
            f"({lobbies_per_s} lobbies/s)",
            len(sent_at) * lobby_size,
            load_seconds,
            unit="res/s",
            note=note,
            extra={
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "samples": len(result.seconds),
                "missing": result.missing,
                "duplicates": result.duplicates,
                "bad_signatures": result.bad_signatures,
                "commit_interval_s": settings.commit_interval_s,
            },
        )
    ]


async def section(run_id: str, loads: tuple[int, ...] = (1000, 100)) -> list[Row]:
    """The goal's load (1,000 results/s), then a light one the worker keeps up with: with the worker behind, the
    first row measures its backlog; the second, what each hop (commits, fan-out, ledger, POST) adds."""
    rows: list[Row] = []
    for n, results_per_s in enumerate(loads):
        rows += await run(f"{run_id}-{n}", results_per_s=results_per_s)
        print(f"  {rows[-1].name}: {rows[-1].note}", flush=True)
    return rows
