"""Circuit breaker: what a dead webhook endpoint with 10,000 deliveries queued costs, and what it costs its neighbours.

One dispatcher (one worker's webhook sink) against the real ledger. A healthy endpoint gets a steady stream (200
deliveries a second, accepted into the ledger every 20 ms, as the agent accepts what it has read) for ``SECONDS``, twice
in the same run: alone, then with a dead endpoint — a closed loopback port, every connect refused — whose 10,000
deliveries were queued in the ledger before the stream started, all due. Printed:

* the attempts the dead endpoint got over the run (from its ledger rows: every attempt is recorded), against the goal
  of one probe per circuit interval after the circuit opened (``run / interval + CROWNSTREAM_SINK_CIRCUIT_FAILURES``);
  the first wave — the sends already in flight before the failures that open the circuit were known, at most
  ``CROWNSTREAM_SINK_MAX_IN_FLIGHT_PER_TARGET`` — is counted apart;
* the healthy endpoint's delivery latency (committed into the ledger -> arrived verified at its receiver), p50 and p99,
  without and with the dead neighbour, and their ratio.

The circuit's interval is fixed here (``_OPEN_S`` = ``_OPEN_MAX_S`` = 2 s, not 30 s doubling to 10 min) so that a run
of a few tens of seconds holds several intervals; everything else is the default.
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import text

from bench.common import Row, fresh_database, percentile
from crownstream.devpeers import WebhookReceiver
from crownstream.processes import free_port
from crownstream.schemas.deliveries import Contact, DeliveryRequest, dedup_key
from crownstream.settings import Settings
from crownstream.sinks import db
from crownstream.sinks.base import Dispatcher
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.sinks.webhooks import WebhookSink

SECONDS = 20.0
RATE = 200  # healthy deliveries a second
TICK_S = 0.02  # accepted in batches of what came due in this long (4 at 200/s)
QUEUED = 10_000  # deliveries waiting for the dead endpoint
OPEN_S = 2.0
SETTLE_S = 10.0  # after the stream, how long the last healthy deliveries may take before they count as missing


class TimedLedger(Ledger):
    """The ledger, timing its claims: with a dead endpoint's rows due, each claim walks past them."""

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.claims: list[float] = []

    async def claim(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return await super().claim(*args, **kwargs)
        finally:
            self.claims.append(time.perf_counter() - t0)


class TimedReceiver(WebhookReceiver):
    """The signature-verifying receiver, noting when each webhook-id first arrived verified and accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}  # webhook-id -> time.perf_counter()

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        response = await super()._handle(request)
        if response.status == 204:
            with self.lock:
                self.arrived.setdefault(request.headers["webhook-id"], at)
        return response


def request(i: int, user: str) -> DeliveryRequest:
    return DeliveryRequest(
        dedup_key=dedup_key(f"circuit-{i}", user, "webhook", "match.result"),
        channel="webhook",
        notification_type="match.result",
        user_id=user,
        source_event_id=f"circuit-{i}",
        tournament_id="cup",
        created_at=datetime.now(UTC),
        title=f"Match {i}: Team Alpha 2 - 1 Team Beta",
        body="Round of 16, best of 3.",
        url=f"https://crownstream.example/m/{i}",
        data={"match": i, "score": "2-1"},
        contact=Contact(email=f"{user}@example.com", display_name=user),
    )


async def endpoint(engine, user: str, url: str) -> tuple[str, str]:
    created, secret = await create_endpoint(engine, user, "http://127.0.0.1/x", allow_private=True)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": url, "i": created.id})
    return created.id, secret


async def stream(sink: WebhookSink, user: str, first: int) -> dict[str, float]:
    """RATE deliveries a second for SECONDS, accepted (committed) every TICK_S in a batch of what came due in it, as
    the agent accepts what it has read: dedup key -> when its batch committed."""
    accepted: dict[str, float] = {}
    count = int(SECONDS * RATE)
    start = time.perf_counter()
    n = 0
    while n < count:
        due = int((time.perf_counter() - start) * RATE) + 1
        batch = [request(first + i, user) for i in range(n, min(count, due))]
        if batch:
            await sink.accept(batch)
            at = time.perf_counter()
            accepted.update((item.dedup_key, at) for item in batch)
            await sink.flush()
            n += len(batch)
        await asyncio.sleep(TICK_S)
    return accepted


async def phase(
    settings: Settings, engine, receiver: TimedReceiver, user: str, first: int
) -> tuple[list[float], int, float, list[float]]:
    """One stream through a fresh sink and dispatcher: (latencies in s, deliveries not received, stream seconds, the
    dispatcher's claim durations in s)."""
    ledger = TimedLedger(engine)
    sink = WebhookSink(settings, ledger)
    dead: list[str] = []

    async def dead_letter(claimed, outcome):
        dead.append(outcome.error or "dead")

    dispatcher = Dispatcher(sink, settings, dead_letter)
    await sink.start()
    dispatcher.start()
    try:
        t0 = time.perf_counter()
        accepted = await stream(sink, user, first)
        seconds = time.perf_counter() - t0
        deadline = time.perf_counter() + SETTLE_S
        while time.perf_counter() < deadline:
            with receiver.lock:
                if all(key in receiver.arrived for key in accepted):
                    break
            await asyncio.sleep(0.1)
    finally:
        await dispatcher.stop()
        await sink.stop()
    if dead:
        raise RuntimeError(f"bench: {len(dead)} deliveries went dead, e.g. {dead[0]}")
    with receiver.lock:
        latencies = [receiver.arrived[k] - at for k, at in accepted.items() if k in receiver.arrived]
    return latencies, len(accepted) - len(latencies), seconds, ledger.claims


async def dead_attempts(engine, target: str) -> tuple[int, list[float]]:
    """Attempts recorded for the dead endpoint: how many, and when (PostgreSQL's clock, seconds since the epoch)."""
    async with engine.connect() as conn:
        times = (
            await conn.execute(
                text(
                    "SELECT EXTRACT(EPOCH FROM CAST(a->>'at' AS timestamptz)) FROM deliveries, "
                    "jsonb_array_elements(attempts) AS a WHERE target = :t ORDER BY 1"
                ),
                {"t": target},
            )
        ).scalars()
        seconds = [float(t) for t in times]
    return len(seconds), seconds


async def run() -> list[Row]:
    async with fresh_database("bench_circuit") as url:
        await asyncio.to_thread(db.upgrade, url)
        settings = Settings(
            database_url=url,
            dev_mode=True,
            sink_allow_private_targets=True,
            sink_circuit_open_s=OPEN_S,
            sink_circuit_open_max_s=OPEN_S,
        )
        engine = db.create_engine(settings)
        # The dead endpoint: a port held bound and never listening, so every connect is refused (no other process
        # can take it meanwhile).
        closed = socket.socket()
        closed.bind(("127.0.0.1", free_port()))
        try:
            with TimedReceiver() as receiver:
                _, alone_secret = await endpoint(engine, "alone", f"{receiver.base_url}/hooks/alone")
                _, beside_secret = await endpoint(engine, "beside", f"{receiver.base_url}/hooks/beside")
                dead_id, _ = await endpoint(engine, "dead", f"http://127.0.0.1:{closed.getsockname()[1]}/hooks/dead")
                receiver.add("alone", alone_secret)
                receiver.add("beside", beside_secret)

                print(f"  {RATE}/s to a healthy endpoint for {SECONDS:.0f} s, alone …", flush=True)
                alone, alone_missing, alone_s, alone_claims = await phase(settings, engine, receiver, "alone", 0)

                queue_sink = WebhookSink(settings, Ledger(engine))
                queued = [request(100_000 + i, "dead") for i in range(QUEUED)]
                for i in range(0, QUEUED, 500):
                    await queue_sink.accept(queued[i : i + 500])
                print(f"  … and again beside a dead endpoint with {QUEUED:,} deliveries queued", flush=True)
                t_start = time.time()
                beside, beside_missing, seconds, beside_claims = await phase(
                    settings, engine, receiver, "beside", 50_000
                )
                run_s = time.time() - t_start
                attempts, at = await dead_attempts(engine, dead_id)
                bad_signatures = receiver.bad_signatures()
        finally:
            closed.close()
        await engine.dispose()

    # The first wave: sends that went out before any failure was recorded back (they were in flight together).
    wave = sum(1 for t in at if at and t - at[0] < OPEN_S / 2)
    probes = attempts - wave
    goal = run_s / OPEN_S + settings.sink_circuit_failures
    alone_p50, alone_p99 = percentile(alone, 0.5) * 1000, percentile(alone, 0.99) * 1000
    beside_p50, beside_p99 = percentile(beside, 0.5) * 1000, percentile(beside, 0.99) * 1000
    note = (
        f"dead endpoint: {attempts} attempts in {run_s:.0f} s ({wave} in the first wave, in flight before the "
        f"circuit opened; then {probes} probes, one per {OPEN_S:.0f} s interval: goal <= {goal:.0f}); healthy p50 "
        f"{alone_p50:.1f} -> {beside_p50:.1f} ms, p99 {alone_p99:.1f} -> {beside_p99:.1f} ms "
        f"(x{beside_p99 / alone_p99:.2f}); stream held {len(alone) / alone_s:.0f} -> {len(beside) / seconds:.0f}/s; "
        f"claims {len(alone_claims)} of mean {_mean_ms(alone_claims):.1f} ms -> {len(beside_claims)} of "
        f"{_mean_ms(beside_claims):.1f} ms"
    )
    if alone_missing or beside_missing or bad_signatures:
        note += f"; ERROR missing {alone_missing} alone, {beside_missing} beside; {bad_signatures} bad signatures"
    print(f"  {note}", flush=True)
    extra = {
        "dead_attempts": attempts,
        "dead_first_wave": wave,
        "dead_probes": probes,
        "run_s": run_s,
        "circuit_interval_s": OPEN_S,
        "goal_attempts": goal,
        "alone_p50_ms": alone_p50,
        "alone_p99_ms": alone_p99,
        "beside_p50_ms": beside_p50,
        "beside_p99_ms": beside_p99,
        "p99_ratio": beside_p99 / alone_p99,
        "missing": alone_missing + beside_missing,
        "alone_stream_per_s": len(alone) / alone_s,
        "beside_stream_per_s": len(beside) / seconds,
        "alone_claims": len(alone_claims),
        "alone_claim_mean_ms": _mean_ms(alone_claims),
        "beside_claims": len(beside_claims),
        "beside_claim_mean_ms": _mean_ms(beside_claims),
    }
    return [
        Row(
            f"circuit: {RATE}/s healthy beside a dead endpoint ({QUEUED:,} queued)",
            len(beside),
            seconds,
            unit="msg/s",
            note=note,
            extra=extra,
        ),
        Row(
            f"  dead endpoint's attempts ({OPEN_S:.0f}-s circuit interval)",
            attempts,
            run_s,
            unit="att/s",
            note=f"goal <= {goal:.0f} (run / interval + {settings.sink_circuit_failures}); first wave {wave}",
        ),
    ]


def _mean_ms(seconds: list[float]) -> float:
    return sum(seconds) / len(seconds) * 1000 if seconds else 0.0
