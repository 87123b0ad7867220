"""Sinks: deliveries per second of one worker's dispatcher, beside the raw client to the same loopback peer.

* signed, ledgered webhooks: claim from the PostgreSQL ledger, sign (Standard Webhooks), POST to a local
  receiver that verifies every signature, record the outcome — per worker process; goal >= 5k/s;
  baseline: unsigned aiohttp POSTs (the sink's client) with the same concurrency, no ledger (the receiver
  answers 401); beside it, the same POSTs of the sink's bodies signed beforehand, which the receiver verifies and
  accepts as it does the sink's (the same work on the receiver's side, on the same two cores).
* emails: claim, render (jinja2, HTML + text), send over SMTP to a local aiosmtpd server, record; goal
  >= 1k/s; baseline: aiosmtplib sending a pre-built message on the same number of connections, no ledger.

The Kafka side (the agent accepting requests into the ledger in batches of 500) is not in these rows: the
accept rate is printed as a row of its own. The peers run in processes of their own (in this process they
would share its GIL and measure the peer), on the same 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx

from bench.common import Row
from crownstream.devpeers import smtp as smtp_peer
from crownstream.devpeers import webhooks as webhook_peer
from crownstream.processes import free_port
from crownstream.schemas.deliveries import Contact, DeliveryRequest, dedup_key
from crownstream.settings import Settings
from crownstream.sinks import db
from crownstream.sinks.base import Dispatcher
from crownstream.sinks.email import EmailSink, build_message, render_email
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.signing import signer
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.sinks.webhooks import WebhookSink, webhook_body

PG = "crownstream@127.0.0.1:15432"


def make_request(i: int, channel: str, user: str) -> DeliveryRequest:
    return DeliveryRequest(
        dedup_key=dedup_key(f"bench-{i}", user, channel, "match.result"),
        channel=channel,
        notification_type="match.result",
        user_id=user,
        source_event_id=f"bench-{i}",
        tournament_id="cup",
        created_at=datetime(2026, 3, 14, tzinfo=UTC),
        title=f"Match {i}: Team Alpha 2 - 1 Team Beta",
        body="Round of 16, best of 3.",
        url=f"https://crownstream.example/m/{i}",
        data={"match": i, "score": "2-1"},
        contact=Contact(email=f"{user}@example.com", display_name=user),
    )


async def _database() -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"postgresql://{PG}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def _drop(name: str) -> None:
    admin = await asyncpg.connect(f"postgresql://{PG}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


class CountingLedger(Ledger):
    """The sink's ledger, counting the sent outcomes it has recorded (committed): the benchmark's clock stops at
    the last one. Polling the ledger's per-state counts instead (a GROUP BY over the table every 50 ms) cost
    PostgreSQL more CPU per email than the sink's own statements, on the same two cores."""

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.sent = 0
        self.target = 0
        self.reached = asyncio.Event()

    async def record(self, results) -> None:
        results = list(results)
        await super().record(results)
        self.sent += sum(outcome.status == "sent" for _, outcome in results)
        if self.sent >= self.target:
            self.reached.set()


async def _drain(sink, settings: Settings, count: int) -> float:
    """Start a dispatcher on the sink and time it until ``count`` rows are recorded sent; a delivery that goes dead
    ends the benchmark with its reason (the dispatcher would retry a failing dead-letter send forever)."""
    failures: list[str] = []
    ledger: CountingLedger = sink.ledger

    async def no_dlq(claimed, outcome):
        failures.append(outcome.error or "dead")
        ledger.reached.set()

    ledger.sent, ledger.target = 0, count
    ledger.reached.clear()
    dispatcher = Dispatcher(sink, settings, no_dlq)
    started = time.perf_counter()
    dispatcher.start()
    try:
        while not ledger.reached.is_set():
            try:
                await asyncio.wait_for(ledger.reached.wait(), 5.0)
            except TimeoutError:  # a check now and then that nothing failed outside the counted path
                if (await sink.ledger.states(sink.channel)).get("sent", 0) >= count:
                    break
        elapsed = time.perf_counter() - started
        if failures:
            raise RuntimeError(f"bench: {len(failures)} deliveries failed, e.g. {failures[0]}")
        states = await sink.ledger.states(sink.channel)
        assert states == {"sent": count}, f"bench: the ledger says {states}, expected {count} sent"
        return elapsed
    finally:
        await dispatcher.stop()


async def run(webhooks: int, emails: int) -> list[Row]:
    name = await _database()
    url = f"postgresql+asyncpg://{PG}/{name}"
    rows: list[Row] = []
    try:
        await asyncio.to_thread(db.upgrade, url)
        # One endpoint receives everything here, so its per-destination cap is lifted to the worker's.
        # dev_mode: the email row signs unsubscribe links with the development key (no secrets on a bench).
        settings = Settings(
            database_url=url,
            dev_mode=True,
            sink_allow_private_targets=True,
            sink_max_in_flight=256,
            sink_max_in_flight_per_target=256,
            sink_claim_batch=256,
            database_pool_size=10,
        )
        engine = db.create_engine(settings)
        ledger = CountingLedger(engine)
        _, secret = await create_endpoint(engine, "alice", "http://127.0.0.1/x", allow_private=True)
        hook_port, smtp_port = free_port(), free_port()
        spawn = multiprocessing.get_context("spawn")
        peers = [
            spawn.Process(
                target=webhook_peer.serve_forever, args=(hook_port, {"alice": secret, "raw": secret}), daemon=True
            ),
            spawn.Process(target=smtp_peer.serve_forever, args=(smtp_port,), daemon=True),
        ]
        for p in peers:
            p.start()
        base = f"http://127.0.0.1:{hook_port}"
        hook = f"{base}/hooks/alice"
        try:
            await _wait_listening(hook_port)
            await _wait_listening(smtp_port)
            # --- webhooks ---------------------------------------------------------------------------------
            from sqlalchemy import text

            async with engine.begin() as conn:
                await conn.execute(text("UPDATE webhook_endpoints SET url = :u"), {"u": hook})
            sink = WebhookSink(settings, ledger)
            await sink.start()
            requests = [make_request(i, "webhook", "alice") for i in range(webhooks)]
            t0 = time.perf_counter()
            for i in range(0, len(requests), 500):
                await sink.accept(requests[i : i + 500])
            rows.append(
                Row(
                    "sinks: accept requests into the ledger (batches of 500)",
                    webhooks,
                    time.perf_counter() - t0,
                    unit="rows/s",
                )
            )
            seconds = await _drain(sink, settings, webhooks)
            await sink.stop()
            stats = httpx.get(f"{base}/stats").json()["alice"]
            assert stats["ids"] == webhooks and stats["bad_signatures"] == 0, stats
            rows.append(
                Row(
                    "sinks: webhooks signed + ledgered -> loopback receiver",
                    webhooks,
                    seconds,
                    unit="msg/s",
                    note="goal >= 5k/s per worker",
                )
            )
            import aiohttp

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as client:

                async def post(i: int) -> None:
                    async with client.post(f"{base}/hooks/raw", data=b"{}") as response:
                        await response.read()

                t0 = time.perf_counter()
                await asyncio.gather(*(post(i) for i in range(webhooks)))
                rows.append(
                    Row(
                        "  baseline: unsigned aiohttp POSTs, no ledger (401s)",
                        webhooks,
                        time.perf_counter() - t0,
                        unit="msg/s",
                    )
                )
                # Beside the goal's baseline, one that does the sink's network work: the same bodies, signed before
                # the clock starts, which the receiver verifies and accepts (204) as it does the sink's. The 401s
                # above cost the receiver less (no HMAC, no JSON, no bookkeeping) on the same two cores.
                signed = [
                    (body, signer((secret,)).headers(f"raw-{i}", body))
                    for i, body in enumerate(webhook_body(r) for r in requests)
                ]

                async def post_signed(i: int) -> None:
                    body, headers = signed[i]
                    async with client.post(f"{base}/hooks/raw", data=body, headers=headers) as response:
                        await response.read()

                t0 = time.perf_counter()
                await asyncio.gather(*(post_signed(i) for i in range(webhooks)))
                rows.append(
                    Row(
                        "  beside it: the same bodies pre-signed, no ledger (204s)",
                        webhooks,
                        time.perf_counter() - t0,
                        unit="msg/s",
                        note="the receiver's work equal to the sink's",
                    )
                )
                stats = httpx.get(f"{base}/stats").json()["raw"]
                assert stats["ids"] == webhooks and stats["bad_signatures"] == webhooks, stats  # (the 401s above)

            # --- email ------------------------------------------------------------------------------------
            settings = settings.model_copy(update={"smtp_port": smtp_port})
            sink = EmailSink(settings, ledger)
            await sink.start()
            requests = [make_request(i, "email", "dora") for i in range(emails)]
            for i in range(0, len(requests), 500):
                await sink.accept(requests[i : i + 500])
            seconds = await _drain(sink, settings, emails)
            await sink.stop()
            rows.append(
                Row(
                    "sinks: emails rendered + ledgered -> loopback SMTP",
                    emails,
                    seconds,
                    unit="msg/s",
                    note=f"goal >= 1k/s; {settings.smtp_connections} SMTP connections",
                )
            )
            message = build_message(
                requests[0], render_email(requests[0], settings.public_url, settings.unsubscribe_key), settings
            )
            import aiosmtplib

            clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port) for _ in range(settings.smtp_connections)]
            for c in clients:
                await c.connect()
            t0 = time.perf_counter()

            async def send_many(c, n):
                for _ in range(n):
                    await c.sendmail(message.sender, [message.recipient], message.data)

            await asyncio.gather(*(send_many(c, emails // len(clients)) for c in clients))
            elapsed = time.perf_counter() - t0
            for c in clients:
                await c.quit()
            rows.append(
                Row(
                    "  baseline: aiosmtplib, pre-built message, no ledger",
                    emails // len(clients) * len(clients),
                    elapsed,
                    unit="msg/s",
                )
            )
        finally:
            for p in peers:
                p.terminate()
        await engine.dispose()
    finally:
        await _drop(name)
    return rows
