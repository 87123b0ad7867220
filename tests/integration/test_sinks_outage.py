"""A webhook receiver's outage through a compressed retry schedule of the default's shape (issue #16, "Must show").

The default webhook schedule is Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts, 27.6 h). Here the same
shape — delays growing, the last two equal, the outage lasting until the last attempts — in seconds. The receiver is
down the way a real outage looks from the sender: its port is closed (every connect refused, nothing answers), and
it comes back on the same port. A port is held bound but not listening (SO_REUSEADDR) for the whole test, so no
other process can take it in between and the receiver can bind it again when it comes back.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from datetime import datetime

import orjson
import pytest
from sqlalchemy import text

from crownstream.devpeers import WebhookReceiver
from crownstream.processes import free_port
from crownstream.sinks.webhook_endpoints import create_endpoint
from tests.integration.test_webhook_sink import Run, fast, point
from tests.support.sinks import (
    eventually,
    make_request,
    migrate,
    produce,
    read_delivery_dead_letters,
    sink_worker_overrides,
)

# Svix's shape (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) in seconds: 8 attempts over 6.6 s.
SCHEDULE_S = (0.05, 0.15, 0.4, 0.8, 1.2, 2.0, 2.0)
MESSAGES = 20
# How late an attempt may come after it fell due: the dispatcher's poll interval (0.1 s here), the outcome's record
# linger (0.05 s), a connect to a closed port and a shared, loaded 2-core machine (0.66 s seen while mypy ran beside).
LATE_S = 1.0


class ClosedPort:
    """A loopback port that refuses every connection until ``up()`` starts a webhook receiver on it."""

    def __init__(self) -> None:
        self.port = free_port()
        self._hold = socket.socket()
        self._hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._hold.bind(("127.0.0.1", self.port))  # bound, never listening: a connect gets RST
        self.receiver: WebhookReceiver | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def up(self, name: str, secret: str) -> WebhookReceiver:
        self.receiver = WebhookReceiver(self.port).start()  # aiohttp binds with SO_REUSEADDR too
        self.receiver.add(name, secret)
        return self.receiver

    def __enter__(self) -> ClosedPort:
        return self

    def __exit__(self, *exc) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        self._hold.close()


async def ledger_rows(engine, target: str) -> list[tuple[str, str, int, list[dict], datetime | None]]:
    """(dedup_key, state, attempt_count, attempts, next_attempt_at) of the endpoint's deliveries."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT dedup_key, state, attempt_count, CAST(attempts AS text), next_attempt_at "
                    "FROM deliveries WHERE target = :t ORDER BY dedup_key"
                ),
                {"t": target},
            )
        ).all()
    return [(k, s, n, orjson.loads(a), due) for k, s, n, a, due in rows]


def gaps(attempts: list[dict]) -> list[float]:
    """Seconds between consecutive recorded attempts (each attempt's ``at`` is PostgreSQL's now() of its record)."""
    at = [datetime.fromisoformat(a["at"]).timestamp() for a in attempts]
    return [b - a for a, b in itertools.pairwise(at)]


async def every_row(engine, target: str, count: int, check) -> bool:
    rows = await ledger_rows(engine, target)
    return len(rows) == count and all(check(row) for row in rows)


async def test_a_receiver_down_for_most_of_the_schedule_loses_nothing_and_is_tried_as_scheduled(engine, database_url):
    """20 deliveries to a receiver whose port is closed for its first 7 attempts (4.6 s of the 6.6-s schedule, then
    until the 8th and last falls due), then back: every one arrives once, none is dead-lettered, and the ledger holds
    each one's 8 attempts at the schedule's delays (jitter 0: each gap is at least its delay, at most LATE_S more).

    The circuit breaker is set out of reach (a threshold of 10,000 failures) so that what is checked is the schedule:
    with it, the deliveries waiting behind an open circuit are handed back unattempted until its probe, keeping their
    attempts — later than the schedule, never sooner (README, Delivery; test_webhook_sink.py's probe test)."""
    with ClosedPort() as down:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, down.url("ada"))
        settings = fast(
            database_url,
            sink_max_attempts=None,
            sink_retry_schedule_s={"webhook": SCHEDULE_S},
            sink_retry_jitter=0.0,
            sink_circuit_failures=10_000,
        )
        async with Run(settings, engine) as run:
            requests = [make_request(i, "webhook", "ada") for i in range(MESSAGES)]
            await run.sink.accept(requests)
            await run.sink.flush()
            # Down until every delivery has failed its 7th attempt: the 8th, due 2 s later, finds the receiver back.
            await eventually(
                lambda: every_row(engine, endpoint.id, MESSAGES, lambda r: r[1] == "failed" and r[2] == 7),
                timeout=30,
                interval=0.05,
                what="every delivery's 7th attempt failed",
            )
            async with engine.connect() as conn:
                first_due_in = (
                    await conn.execute(
                        text(
                            "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now()) FROM deliveries WHERE target = :t"
                        ),
                        {"t": endpoint.id},
                    )
                ).scalar_one()
            assert first_due_in > 0, "an 8th attempt fell due before the receiver was back: the test proves nothing"
            receiver = down.up("ada", secret)
            await eventually(
                lambda: len(receiver.successes_by_id("ada")) == MESSAGES,
                timeout=20,
                interval=0.05,
                what="every delivery once the receiver is back",
            )
            await asyncio.sleep(1.0)  # ten poll intervals: anything sent again would show now
        expected = {r.dedup_key for r in requests}
        assert run.dead == []
        assert set(receiver.successes_by_id("ada")) == expected  # 0 lost
        assert set(receiver.received["ada"].raw.values()) == {1}  # 0 duplicate, not even before deduplication
        assert receiver.bad_signatures() == 0
        rows = await ledger_rows(engine, endpoint.id)
        assert {(state, count) for _, state, count, _, _ in rows} == {("sent", 8)}
        worst_late = 0.0
        for key, _, _, attempts, _ in rows:
            assert [a["status"] for a in attempts] == ["failed"] * 7 + ["sent"], (key, attempts)
            assert {a["error"] for a in attempts[:7]} == {"connection refused"}, attempts
            between = gaps(attempts)
            assert len(between) == len(SCHEDULE_S)
            for gap, delay in zip(between, SCHEDULE_S, strict=True):
                assert delay <= gap <= delay + LATE_S, (key, between)
                worst_late = max(worst_late, gap - delay)
        print(
            f"\noutage: {MESSAGES} deliveries, 8 attempts each at the schedule's delays, latest by {worst_late:.3f} s"
        )


# --- The same with real workers, one of them killed -9 while the retries are pending ------------------------------

# Seconds again, the same shape; long enough that a worker's start (~15 s) does not run the schedule out.
WORKER_SCHEDULE_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0)
JITTER = 0.2


@pytest.mark.slow
async def test_a_worker_killed_while_retries_are_pending_loses_nothing(
    settings, topics, start_worker, database_url, engine
):
    """Delivery requests produced to the real webhook delivery topic; a worker process accepts them and starts the
    retries against the closed port; when every one has failed 3 attempts it is killed with SIGKILL, retries pending
    in the ledger; a second worker takes over (its attempts carry its own worker id), the receiver comes back when
    every delivery has failed its 6th attempt, and the 7th delivers each once: 0 dead-lettered (ledger and delivery DLQ
    topic), 0 lost, 0 duplicate, each gap at least its delay less the jitter. The circuit breaker is out of reach, as
    above: with it the deliveries would wait for its probes (fewer attempts, none sooner)."""
    await migrate(database_url)
    with ClosedPort() as down:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, down.url("ada"))
        overrides = sink_worker_overrides(
            database_url,
            sink_max_attempts=None,
            sink_retry_schedule_s={"webhook": WORKER_SCHEDULE_S},
            sink_retry_jitter=JITTER,
            sink_circuit_failures=10_000,
            sink_lease_s=3.0,
        )
        first = start_worker(**overrides)
        requests = [make_request(i, "webhook", "ada") for i in range(MESSAGES)]
        await produce(settings, requests)
        await eventually(
            lambda: every_row(engine, endpoint.id, MESSAGES, lambda r: len(r[3]) >= 3),
            timeout=60,
            interval=0.05,
            what="three failed attempts of every delivery",
        )
        first.kill()
        at_kill = await ledger_rows(engine, endpoint.id)
        assert all(state != "sent" for _, state, _, _, _ in at_kill)
        second = start_worker(**overrides)
        assert not first.alive() and second.alive()
        await eventually(
            lambda: every_row(engine, endpoint.id, MESSAGES, lambda r: r[1] == "failed" and r[2] >= 6),
            timeout=60,
            interval=0.05,
            what="every delivery's 6th attempt failed, on the second worker",
        )
        receiver = down.up("ada", secret)
        await eventually(
            lambda: len(receiver.successes_by_id("ada")) == MESSAGES,
            timeout=40,
            interval=0.1,
            what="every delivery once the receiver is back",
        )
        await asyncio.sleep(4.0)  # longer than a lease: a late re-send would show now
        expected = {r.dedup_key for r in requests}
        assert set(receiver.successes_by_id("ada")) == expected  # 0 lost
        assert set(receiver.received["ada"].raw.values()) == {1}  # 0 duplicate
        assert await read_delivery_dead_letters(settings) == []  # 0 dead-lettered
        rows = await ledger_rows(engine, endpoint.id)
        assert {state for _, state, _, _, _ in rows} == {"sent"}
        workers: set[str] = set()
        lost_claims = 0
        for key, _, count, attempts, _ in rows:
            assert [a["status"] for a in attempts][-1] == "sent" and len(attempts) <= len(WORKER_SCHEDULE_S) + 1
            assert {a["status"] for a in attempts[:-1]} == {"failed"}, (key, attempts)
            # A claim the kill cut short (sent nothing: the port was closed) counts as an attempt without a record.
            lost_claims += count - len(attempts)
            assert 0 <= count - len(attempts) <= 1, (key, count, attempts)
            # The schedule never decreases, so a lost claim (one delay skipped) keeps every gap at least its delay.
            for gap, delay in zip(gaps(attempts), WORKER_SCHEDULE_S, strict=False):
                assert gap >= delay * (1 - JITTER), (key, gaps(attempts))
            workers |= {a["worker"] for a in attempts}
        assert len(workers) == 2, workers  # the first worker's attempts, then the second's
        print(
            f"\nkill -9 during an outage: {MESSAGES} deliveries, each received once; attempts per delivery "
            f"{sorted({len(r[3]) for r in rows})}, claims cut short by the kill {lost_claims}"
        )
