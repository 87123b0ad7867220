"""Exactly-once delivery under crashes and outages, as receivers see it.

* kill -9 of the worker at random moments while deliveries flow to all four sinks, several times; then
  nothing may be missing, and after deduplicating by webhook-id / Message-ID / dedup key nothing may be
  there twice. Raw re-sends of an id (possible only for a crash between a send and its ledger record) are
  counted and printed.
* PostgreSQL (a separate instance of its own — never the shared one) stopped for 30 s mid-stream: no loss,
  deliveries resume.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
from collections import Counter

import pytest
from sqlalchemy import func, select

from crownstream.devpeers import DiscordStandIn, SmtpPeer, WebhookReceiver
from crownstream.processes import free_port
from crownstream.schemas.deliveries import Contact
from crownstream.settings import Settings
from crownstream.sinks import db
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.tables import feed_items
from crownstream.sinks.webhook_endpoints import create_endpoint
from tests.support.services import REPO
from tests.support.sinks import eventually, make_request, migrate, produce, sink_worker_overrides

pytestmark = pytest.mark.slow


def workload(wave: int, per_wave: int, hook_urls: dict[str, str]) -> list:
    base = wave * per_wave
    requests = []
    for i in range(base, base + per_wave):
        user = "alice" if i % 2 else "bob"
        requests.append(make_request(i, "webhook", user))
        requests.append(make_request(i, "email", user))
        requests.append(make_request(i, "in_app", user))
        if i % 3 == 0:
            requests.append(make_request(i, "discord", user, contact=Contact(discord_webhook_url=hook_urls[user])))
    return requests


async def register_hooks(engine, receiver: WebhookReceiver, delay_s: float = 0.0) -> None:
    for user in ("alice", "bob"):
        endpoint, secret = await create_endpoint(engine, user, "http://127.0.0.1/placeholder", allow_private=True)
        url = receiver.add(user, secret, delay_s=delay_s)
        from sqlalchemy import text

        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": url, "i": endpoint.id}
            )


class Observed:
    def __init__(self, receiver, smtp, discord, engine) -> None:
        self.receiver, self.smtp, self.discord, self.engine = receiver, smtp, discord, engine

    def webhooks(self) -> Counter:
        return self.receiver.successes_by_id()

    def webhook_raw(self) -> Counter:
        raw: Counter = Counter()
        for got in self.receiver.received.values():
            raw.update(got.raw)
        return raw

    def emails(self) -> Counter:
        return Counter({mid.strip("<>").split("@")[0]: n for mid, n in self.smtp.by_message_id.items()})

    def discord_msgs(self) -> Counter:
        return Counter(self.discord.by_title)

    async def feed(self) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(feed_items))).scalar_one()

    async def complete(self, expected: dict[str, set[str]], expected_discord_titles: set[str]) -> bool:
        return (
            set(self.webhooks()) >= expected["webhook"]
            and set(self.emails()) >= expected["email"]
            and set(self.discord_msgs()) >= expected_discord_titles
            and await self.feed() >= len(expected["in_app"])
        )

    async def check_exactly_once(self, expected: dict[str, set[str]], expected_discord_titles: set[str]) -> dict:
        # Nothing missing, nothing unexpected.
        assert set(self.webhooks()) == expected["webhook"]
        assert set(self.emails()) == expected["email"]
        assert set(self.discord_msgs()) == expected_discord_titles
        async with self.engine.connect() as conn:
            keys = (await conn.execute(select(feed_items.c.dedup_key))).scalars().all()
        assert len(keys) == len(set(keys)) and set(keys) == expected["in_app"]
        assert self.receiver.bad_signatures() == 0
        # Raw re-sends: what a receiver that did not deduplicate would have seen twice.
        return {
            "webhook": sum(n - 1 for n in self.webhook_raw().values() if n > 1),
            "email": sum(n - 1 for n in self.smtp.by_message_id.values() if n > 1),
            "discord": sum(n - 1 for n in self.discord.by_title.values() if n > 1),
            "in_app": 0,  # one transaction with the ledger: a re-send is impossible (checked above)
        }


async def test_kill_9_at_random_points_loses_and_duplicates_nothing(settings, topics, start_worker, database_url):
    await migrate(database_url)
    engine = db.create_engine(Settings(database_url=database_url))
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    with WebhookReceiver() as receiver, SmtpPeer() as smtp, DiscordStandIn(limit=50, per_s=1.0) as discord:
        try:
            await register_hooks(engine, receiver, delay_s=0.003)
            hook_urls = {u: discord.webhook_url(u) for u in ("alice", "bob")}
            overrides = sink_worker_overrides(database_url, smtp_port=smtp.port, sink_lease_s=3.0, sink_max_attempts=50)
            observed = Observed(receiver, smtp, discord, engine)
            all_requests = []
            kills, per_wave = 3, 100
            for wave in range(kills):
                worker = start_worker(**overrides)
                requests = workload(wave, per_wave, hook_urls)
                all_requests += requests
                await produce(settings, requests)
                # Let it get going, then die at a random moment: mid-accept, mid-send or mid-record.
                await eventually(
                    lambda: len(receiver.successes_by_id()) > 0 or smtp.count() > 0,
                    timeout=60,
                    interval=0.05,
                    what="the first deliveries of this wave",
                )
                await asyncio.sleep(rng.uniform(0.05, 1.5))
                worker.kill()
            start_worker(**overrides)
            expected = {
                ch: {r.dedup_key for r in all_requests if r.channel == ch} for ch in ("webhook", "email", "in_app")
            }
            titles = {r.title for r in all_requests if r.channel == "discord"}
            await eventually(
                lambda: observed.complete(expected, titles),
                timeout=120,
                interval=0.5,
                what="every delivery after the crashes",
            )
            await asyncio.sleep(4)  # longer than a lease: a late re-send would show now
            resends = await observed.check_exactly_once(expected, titles)
            states = await Ledger(engine).states()
            assert states == {"sent": sum(len(v) for v in expected.values()) + len(titles)}
            print(f"\ncrash test: {kills} kill -9, {len(all_requests)} deliveries, raw re-sends by channel {resends}")
            # Re-sends come only from sends in flight at a kill: bounded by what can be in flight.
            assert (
                sum(resends.values()) <= kills * overrides.get("sink_max_in_flight", Settings().sink_max_in_flight) * 3
            )
        finally:
            await engine.dispose()


# --- PostgreSQL outage (a separate instance) ------------------------------------------------------------
@pytest.fixture
def own_postgres(unique_id):
    port = free_port()
    # Under the repo's .state like the shared server's (the postgres user must be able to reach it; pytest's
    # tmp dirs are private to root).
    state = REPO / ".state" / f"test-pg-{unique_id}"
    env = {
        **os.environ,
        "CROWNSTREAM_PG_PORT": str(port),
        "CROWNSTREAM_STATE_DIR": str(state),
        "CROWNSTREAM_PG_DATABASE": "outage",
    }
    script = str(REPO / "deploy" / "postgres.sh")

    def run(action: str) -> None:
        subprocess.run([script, action], env=env, check=True, capture_output=True, timeout=120)

    run("start")
    try:
        yield port, run
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


async def test_postgres_stopped_for_30s_mid_stream_loses_nothing(settings, topics, start_worker, own_postgres):
    port, pg = own_postgres
    url = f"postgresql+asyncpg://crownstream@127.0.0.1:{port}/outage"
    await migrate(url)
    engine = db.create_engine(Settings(database_url=url))
    with WebhookReceiver() as receiver, SmtpPeer() as smtp, DiscordStandIn(limit=50, per_s=1.0) as discord:
        try:
            await register_hooks(engine, receiver)
            hook_urls = {u: discord.webhook_url(u) for u in ("alice", "bob")}
            observed = Observed(receiver, smtp, discord, engine)
            start_worker(**sink_worker_overrides(url, smtp_port=smtp.port, sink_lease_s=10.0, sink_max_attempts=50))
            first, second = workload(0, 60, hook_urls), workload(1, 60, hook_urls)
            await produce(settings, first)
            await eventually(lambda: len(receiver.successes_by_id()) > 10, what="deliveries flowing")
            await asyncio.to_thread(pg, "stop")
            await engine.dispose()  # the test's own connections died with the server
            await produce(settings, second)  # arrive while PostgreSQL is down
            await asyncio.sleep(30)
            await asyncio.to_thread(pg, "start")
            everything = first + second
            expected = {
                ch: {r.dedup_key for r in everything if r.channel == ch} for ch in ("webhook", "email", "in_app")
            }
            titles = {r.title for r in everything if r.channel == "discord"}
            await eventually(
                lambda: observed.complete(expected, titles),
                timeout=120,
                interval=0.5,
                what="every delivery after the outage",
            )
            resends = await observed.check_exactly_once(expected, titles)
            print(f"\npostgres outage: {len(everything)} deliveries, raw re-sends by channel {resends}")
            assert await Ledger(engine).states() == {"sent": sum(len(v) for v in expected.values()) + len(titles)}
        finally:
            await engine.dispose()
