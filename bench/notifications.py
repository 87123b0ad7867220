"""Notification fan-out: delivery requests materialised per second by one worker (exactly_once), from an
all-users broadcast and from a mix of per-event notifications.

The rate is counted where the sinks see it: committed records on the delivery topics (read_committed),
from the Kafka timestamp of the first request to the last. Users are created first through
``preferences.updated`` (a third with an email address, so some notices go to two channels); that
warm-up is not measured.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import BOOTSTRAP, Row
from crownstream.processes import free_port, settings_env
from crownstream.schemas.examples import example
from crownstream.settings import Settings
from crownstream.streams.admin import ensure_topics
from crownstream.streams.topics import DELIVERIES, KEY_FIELDS, topic_for

TEAM_SIZE = 5


def user(n: int) -> str:
    return f"user-{n:07d}"


def prefs(n: int) -> dict:
    contact = {"email": f"{user(n)}@example.org"} if n % 3 == 0 else {}
    return example("preferences.updated", event_id=f"prefs-{n}", user_id=user(n), preferences={"contact": contact})


def mixed_event(n: int, teams: int) -> dict:
    team = f"team-{n % teams}"
    kind = n % 5
    if kind == 0:
        return example("sponsor.approved", event_id=f"mix-{n}", team_id=team, sponsor=f"S{n}")
    if kind == 1:
        return example("payment.verified", event_id=f"mix-{n}", user_id=user(n % (teams * TEAM_SIZE)))
    if kind == 2:
        return example("achievement.earned", event_id=f"mix-{n}", user_id=user(n % (teams * TEAM_SIZE)))
    if kind == 3:
        return example("ranking.changed", event_id=f"mix-{n}", team_id=team, tournament_id=f"t-{n % 16}")
    return example(
        "invite.sent",
        event_id=f"mix-{n}",
        team_id=team,
        user_id=user((n * 7) % (teams * TEAM_SIZE)),
        invited_by=user(0),
    )


async def produce(settings: Settings, events) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, max_batch_size=512 * 1024, acks=1)
    await producer.start()
    try:
        futures = []
        for e in events:
            topic = topic_for(e["type"]).full_name(settings)
            futures.append(await producer.send(topic, orjson.dumps(e), key=str(e[KEY_FIELDS[e["type"]]]).encode()))
            if len(futures) >= 20_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class Requests:
    """Counts committed delivery requests as they arrive, with the first and last Kafka timestamps."""

    def __init__(self, settings: Settings) -> None:
        self.topics = [spec.full_name(settings) for spec in DELIVERIES.values()]
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    async def __aenter__(self) -> Requests:
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=BOOTSTRAP,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="latest",
            group_id=f"bench-notif-{os.getpid()}-{time.time_ns()}",
        )
        await self.consumer.start()
        while not self.consumer.assignment():
            await self.consumer.getmany(timeout_ms=200)
        for tp in self.consumer.assignment():
            await self.consumer.seek_to_end(tp)
            await self.consumer.position(tp)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    def reset(self) -> None:
        self.count, self.first, self.last = 0, None, None

    async def until(self, done, quiet_s: float, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=10_000)
            n = 0
            for records in batch.values():
                for r in records:
                    ts = r.timestamp / 1000
                    self.first = ts if self.first is None else min(self.first, ts)
                    self.last = ts if self.last is None else max(self.last, ts)
                n += len(records)
            self.count += n
            if n:
                quiet_since = time.monotonic()
            if done(self.count) or (quiet_s and self.count and time.monotonic() - quiet_since > quiet_s):
                return
        raise TimeoutError(f"only {self.count} delivery requests within {timeout}s")

    @property
    def seconds(self) -> float:
        return (self.last - self.first) if self.first is not None and self.last is not None else 0.0


async def consumed(url: str, event_type: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            text = (await client.get(f"{url}/metrics")).text
        except httpx.HTTPError:
            return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("crownstream_events_in_total{") and f'type="{event_type}"' in line
    )


async def wait_consumed(url: str, event_type: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await consumed(url, event_type) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker consumed fewer than {count} {event_type} within {timeout}s")
        await asyncio.sleep(0.5)


async def run(prefix: str, users: int, events: int, timeout: float = 900) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            kafka_bootstrap=BOOTSTRAP,
            topic_prefix=prefix,
            app_id=f"{prefix}notif",
            topic_partitions=8,
            data_dir=tmp,
            web_port=free_port(),
            log_json=False,
            log_level="warning",
            notifications_broadcast_chunk=1000,
        )
        await ensure_topics(settings=settings)
        env = {**os.environ, **settings_env(settings)}
        log = open(Path(tmp) / "worker.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.notifications_worker", "worker", "--loglevel", "warn"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            return await _measure(settings, users, events, timeout)
        except Exception:
            print((Path(tmp) / "worker.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _measure(settings: Settings, users: int, events: int, timeout: float) -> list[Row]:
    url = settings.worker_url
    print(f"  creating {users} users (preferences) …", flush=True)
    await produce(settings, (prefs(n) for n in range(users)))
    await wait_consumed(url, "preferences.updated", users, timeout)
    teams = max(1, min(users // TEAM_SIZE, 2000))
    rows = []
    async with Requests(settings) as requests:
        await produce(
            settings,
            [
                example(
                    "roster.changed",
                    event_id=f"roster-{t}",
                    team_id=f"team-{t}",
                    added=[user(t * TEAM_SIZE + i) for i in range(TEAM_SIZE)],
                    removed=[],
                )
                for t in range(teams)
            ],
        )
        await requests.until(lambda c: c >= teams * TEAM_SIZE, 0, timeout)

        requests.reset()
        await produce(
            settings, [example("broadcast.requested", event_id="bench-broadcast", broadcast_id="bench-broadcast")]
        )
        await requests.until(lambda c: c >= users, 0, timeout)
        rows.append(
            Row(
                f"notifications: all-users broadcast -> {users} requests (1 worker, EOS)",
                requests.count,
                requests.seconds,
                note="delivery requests committed per second",
            )
        )

        requests.reset()
        await produce(settings, (mixed_event(n, teams) for n in range(events)))
        await requests.until(lambda c: False, 5.0, timeout)
        rows.append(
            Row(
                f"notifications: {events} mixed events -> requests (1 worker, EOS)",
                requests.count,
                requests.seconds,
                note=f"{requests.count / events:.1f} requests per event",
            )
        )
    for row in rows:
        print(f"  {row.name}: {row.rate:,.0f}/s", flush=True)
    return rows
