"""The delivery ledger and feed against a real PostgreSQL (a fresh database per test, migrated by Alembic)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from crownstream.settings import Settings
from crownstream.sinks.feed import FeedSink, list_feed, mark_read, prune_feed
from crownstream.sinks.ledger import Ledger, Outcome, ledger_row
from crownstream.sinks.webhook_endpoints import create_endpoint, get_endpoints, mark_failing, rotate_secret
from tests.support.sinks import make_request, migrate


async def test_migrations_create_what_the_code_queries(engine, database_url):
    from crownstream.sinks.tables import metadata

    async with engine.connect() as conn:
        columns = {
            (table, column)
            for table, column in (
                await conn.execute(
                    text("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")
                )
            ).tuples()
        }
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    wanted = {(table.name, column.name) for table in metadata.tables.values() for column in table.columns}
    assert wanted - columns == set(), "tables.py names columns the migrations do not create"
    from alembic.script import ScriptDirectory

    from crownstream.sinks.db import alembic_config

    assert version == ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()  # all applied
    await migrate(database_url)  # idempotent


async def test_accept_is_idempotent_and_claim_is_exclusive(engine):
    requests = [make_request(i, "email") for i in range(200)]
    a, b = Ledger(engine, "worker-a"), Ledger(engine, "worker-b")
    await a.accept([ledger_row(r) for r in requests])
    await b.accept([ledger_row(r) for r in requests])  # the same requests again: no-ops
    assert await a.states() == {"pending": 200}

    # Two workers claiming concurrently, in small batches, until nothing is left: every row exactly once.
    async def drain(ledger):
        got = []
        while batch := await ledger.claim("email", 7, lease_s=60):
            got += batch
        return got

    got_a, got_b, got_c = await asyncio.gather(drain(a), drain(b), drain(Ledger(engine, "worker-c")))
    keys = [c.dedup_key for c in got_a + got_b + got_c]
    assert len(keys) == 200 and len(set(keys)) == 200
    assert await a.claim("email", 10, lease_s=60) == []  # all leased
    assert await a.states() == {"sending": 200}


async def test_outcomes_retry_schedule_dead_and_lease_expiry(engine):
    ledger = Ledger(engine, "w1")
    await ledger.accept([ledger_row(make_request(i, "webhook"), "ep") for i in range(3)])
    sent, failed, dead = sorted(await ledger.claim("webhook", 10, lease_s=60), key=lambda c: c.dedup_key)
    assert (sent.attempt, sent.reclaimed) == (1, False)
    await ledger.record(
        [
            (sent, Outcome.sent(204, "d" * 64)),
            (failed, Outcome.failed("HTTP 503", retry_in=0.5, code=503)),
            (dead, Outcome.dead("gave up")),
        ]
    )
    assert await ledger.states() == {"sent": 1, "failed": 1, "dead": 1}
    assert await ledger.claim("webhook", 10, lease_s=60) == []  # the retry is not due yet
    await asyncio.sleep(0.7)
    [again] = await ledger.claim("webhook", 10, lease_s=0.3)
    assert again.dedup_key == failed.dedup_key and again.attempt == 2
    # Its worker "dies": after the lease another worker claims it, flagged as a possible re-send.
    other = Ledger(engine, "w2")
    assert await other.claim("webhook", 10, lease_s=60) == []
    await asyncio.sleep(0.5)
    [reclaimed] = await other.claim("webhook", 10, lease_s=60)
    assert reclaimed.reclaimed and reclaimed.attempt == 3
    await other.record([(reclaimed, Outcome.sent(200))])
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT state, attempts, payload_digest FROM deliveries WHERE dedup_key = :k"),
                {"k": failed.dedup_key},
            )
        ).one()
    assert row.state == "sent"
    assert [a["status"] for a in row.attempts] == ["failed", "sent"]
    assert row.attempts[0]["code"] == 503 and row.attempts[0]["error"] == "HTTP 503"


async def test_revive_only_dead_rows_and_prune_only_old_delivered_rows(engine):
    ledger = Ledger(engine, "w1")
    rows = [ledger_row(make_request(i, "email")) for i in range(3)]
    await ledger.accept(rows)
    claimed = sorted(await ledger.claim("email", 10, lease_s=60), key=lambda c: c.dedup_key)
    await ledger.record([(claimed[0], Outcome.sent()), (claimed[1], Outcome.dead("x")), (claimed[2], Outcome.sent())])
    assert await ledger.revive(rows) == 1
    assert await ledger.states() == {"sent": 2, "pending": 1}
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE deliveries SET sent_at = now() - interval '40 days' WHERE dedup_key = :k"),
            {"k": claimed[0].dedup_key},
        )
    assert await ledger.prune(30) == 1
    assert await ledger.states() == {"sent": 1, "pending": 1}


async def test_feed_is_written_exactly_once_with_its_ledger_row(engine):
    sink = FeedSink(Settings(), Ledger(engine))
    requests = [make_request(i, "in_app", user="ada") for i in range(25)]
    await sink.accept(requests)
    await sink.accept(requests[:10])  # redelivered by Kafka after a crash
    assert await sink.ledger.states() == {"sent": 25}
    page = await list_feed(engine, "ada", limit=10)
    assert page["unread_count"] == 25 and len(page["items"]) == 10
    assert page["items"][0]["title"] == "Notification 24"  # newest first
    ids = [item["id"] for item in page["items"]]
    page2 = await list_feed(engine, "ada", limit=10, before=page["next_before"])
    assert not set(ids) & {item["id"] for item in page2["items"]}
    everything = [page, page2, await list_feed(engine, "ada", limit=10, before=page2["next_before"])]
    assert sum(len(p["items"]) for p in everything) == 25 and everything[-1]["next_before"] is None
    assert await mark_read(engine, "ada", ids[:3]) == 3
    assert await mark_read(engine, "ada", ids[:3]) == 0
    assert (await list_feed(engine, "ada"))["unread_count"] == 22
    assert await list_feed(engine, "someone-else") == {
        "user_id": "someone-else",
        "unread_count": 0,
        "unseen_count": 0,
        "items": [],
        "next_before": None,
    }
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE feed_items SET read_at = now() - interval '100 days' WHERE id = :i"), {"i": ids[0]}
        )
    assert await prune_feed(engine, 90) == 1
    assert (await list_feed(engine, "ada", limit=100))["unread_count"] == 22


async def test_endpoint_is_disabled_once_after_failing_long_enough(engine):
    endpoint, secret = await create_endpoint(
        engine, "ada", "https://hooks.example.com/x", ["match.result"], allow_private=True
    )  # no DNS here: the name is not resolved
    assert secret.startswith("whsec_") and endpoint.secrets == (secret,)
    assert await mark_failing(engine, endpoint.id, 0.3, "HTTP 500") is False
    await asyncio.sleep(0.4)
    assert await mark_failing(engine, endpoint.id, 0.3, "HTTP 500") is True
    assert await mark_failing(engine, endpoint.id, 0.3, "HTTP 500") is False  # told once
    new, _ = await rotate_secret(engine, endpoint.id)
    async with engine.connect() as conn:
        secrets = (
            await conn.execute(text("SELECT secrets FROM webhook_endpoints WHERE id = :i"), {"i": endpoint.id})
        ).scalar_one()
    assert secrets == [new, secret]


async def test_a_rotated_out_secret_signs_for_its_grace_window_then_no_more(engine):
    endpoint, first = await create_endpoint(engine, "ada", "https://hooks.example.com/x", allow_private=True)
    second, until = await rotate_secret(engine, endpoint.id, grace_s=1.0)
    (current,) = (await get_endpoints(engine, [endpoint.id])).values()
    now = datetime.now(UTC)
    assert until is not None and 0 < (until - now).total_seconds() <= 1.5
    assert current.signing_secrets(now) == (second, first)  # the receiver may still check the old one
    assert current.signing_secrets(until) == (second,)  # then only the new one signs
    await asyncio.sleep(1.1)
    third, _ = await rotate_secret(engine, endpoint.id, grace_s=60.0)
    (current,) = (await get_endpoints(engine, [endpoint.id])).values()
    assert current.secrets == (third, second)  # the first, past its window, is dropped by the next rotation
    assert current.signing_secrets(datetime.now(UTC)) == (third, second)
    assert (await rotate_secret(engine, endpoint.id, keep_old=False))[1] is None  # no window: the old stop now


async def test_a_batch_of_outcomes_of_every_kind_is_recorded_row_by_row(engine):
    """Outcomes are recorded set-based (one statement per kind): each row still gets exactly its own outcome, and
    a row this worker no longer holds is left alone, as the single-row statements did."""
    ledger, other = Ledger(engine, "w1"), Ledger(engine, "w2")
    await ledger.accept([ledger_row(make_request(i, "webhook"), "ep") for i in range(40)])
    claimed = sorted(await ledger.claim("webhook", 40, lease_s=60), key=lambda c: c.dedup_key)
    kinds = ["sent", "failed", "dead", "deferred"]
    outcomes = {
        "sent": lambda i: Outcome.sent(200 + i, f"{i:064x}"),
        "failed": lambda i: Outcome.failed(f"HTTP 503 #{i}", retry_in=30.0 + i, code=503),
        "dead": lambda i: Outcome.dead(f"gone #{i}", code=410, reason_code="delivery_rejected"),
        "deferred": lambda i: Outcome.deferred(60.0),
    }
    await ledger.record([(c, outcomes[kinds[i % 4]](i)) for i, c in enumerate(claimed)])
    assert await ledger.states() == {"sent": 10, "failed": 10, "dead": 10, "pending": 10}

    async with engine.connect() as conn:
        rows = {
            r.dedup_key: r
            for r in (
                await conn.execute(
                    text(
                        "SELECT dedup_key, state, attempts, attempt_count, last_error, payload_digest, lease_until,"
                        " next_attempt_at - now() AS wait FROM deliveries"
                    )
                )
            ).all()
        }
    for i, c in enumerate(claimed):
        row, kind = rows[c.dedup_key], kinds[i % 4]
        assert row.lease_until is None
        if kind == "deferred":  # handed back unattempted: the attempt is given back, nothing logged
            assert (row.state, row.attempt_count, row.attempts) == ("pending", 0, [])
            assert 50 < row.wait.total_seconds() <= 60
            continue
        [attempt] = row.attempts
        assert (attempt["status"], attempt["worker"], row.attempt_count) == (kind, "w1", 1)
        if kind == "sent":
            assert (attempt["code"], row.payload_digest, row.last_error) == (200 + i, f"{i:064x}", None)
        elif kind == "failed":
            assert (attempt["code"], attempt["error"], row.last_error) == (503, f"HTTP 503 #{i}", f"HTTP 503 #{i}")
            assert 20 + i < row.wait.total_seconds() <= 30 + i
        else:
            assert (attempt["code"], row.last_error) == (410, f"gone #{i}")

    # A failed outcome for a row another worker now holds (its lease ran out and w2 claimed it) changes nothing.
    await ledger.accept([ledger_row(make_request(100, "webhook"), "ep")])
    [mine] = await ledger.claim("webhook", 10, lease_s=0.2)
    await asyncio.sleep(0.4)
    [theirs] = await other.claim("webhook", 10, lease_s=60)
    await ledger.record([(mine, Outcome.failed("late", retry_in=1.0)), (mine, Outcome.deferred(1.0))])
    async with engine.connect() as conn:
        state, claimed_by = (
            await conn.execute(
                text("SELECT state, claimed_by FROM deliveries WHERE dedup_key = :k"), {"k": theirs.dedup_key}
            )
        ).one()
    assert (state, claimed_by) == ("sending", "w2")
