"""A real worker delivering to real peers on loopback: webhooks verified by signature, mail received by an
aiosmtpd server, Discord's stand-in enforcing size and rate limits, the feed over the worker's HTTP API."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from crownstream.devpeers import DiscordStandIn, SmtpPeer, WebhookReceiver
from crownstream.schemas.deliveries import Contact
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.webhook_endpoints import create_endpoint
from tests.support.sinks import (
    eventually,
    make_request,
    produce,
    read_delivery_dead_letters,
    sink_worker_overrides,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def peers():
    with WebhookReceiver() as receiver, SmtpPeer() as smtp, DiscordStandIn(limit=5, per_s=1.0, force_429=2) as discord:
        yield receiver, smtp, discord


async def test_every_channel_delivers_each_request_once(settings, topics, start_worker, database_url, engine, peers):
    receiver, smtp, discord = peers
    ok = await create_endpoint(engine, "alice", "http://placeholder", allow_private=True)
    ok_url = receiver.add("alice", ok[1])
    flaky = await create_endpoint(engine, "bob", "http://placeholder", allow_private=True)
    flaky_url = receiver.add("bob", flaky[1], fail_first=3)
    dead = await create_endpoint(engine, "carol", "http://placeholder", allow_private=True)
    dead_url = receiver.add("carol", dead[1], always_fail=True)
    filtered = await create_endpoint(engine, "alice", "http://placeholder", ["ranking.changed"], allow_private=True)
    receiver.add("alice-rankings", filtered[1])
    from sqlalchemy import text

    async with engine.begin() as conn:
        for (endpoint, _), url in (
            (ok, ok_url),
            (flaky, flaky_url),
            (dead, dead_url),
            (filtered, f"{receiver.base_url}/hooks/alice-rankings"),
        ):
            await conn.execute(
                text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": url, "i": endpoint.id}
            )

    hook_url = discord.webhook_url("guild1")
    webhooks = [make_request(i, "webhook", "alice") for i in range(20)] + [
        make_request(100, "webhook", "bob"),
        make_request(200, "webhook", "carol"),
    ]
    emails = [make_request(i, "email", "dora") for i in range(8)] + [
        make_request(50, "email", "dora", notification_type="payment.verified", critical=True)
    ]
    discords = [make_request(i, "discord", "erin", contact=Contact(discord_webhook_url=hook_url)) for i in range(12)]
    discords.append(
        make_request(
            99,
            "discord",
            "erin",
            contact=Contact(discord_webhook_url=hook_url),
            title="T" * 256,
            body="D" * 4000,
            data={f"field {k}": "V" * 1000 for k in range(30)},
        )
    )
    feed = [make_request(i, "in_app", "frank") for i in range(10)]

    worker = start_worker(**sink_worker_overrides(database_url, smtp_port=smtp.port))
    everything = webhooks + emails + discords + feed
    await produce(
        settings,
        everything + everything[:15],  # the first 15 twice: a producer retry
        raw=[("webhook", b"not json"), ("email", orjson.dumps({"channel": "email"}))],
    )

    await eventually(
        lambda: len(receiver.successes_by_id("alice")) == 20 and len(receiver.successes_by_id("bob")) == 1,
        what="webhooks delivered",
    )
    # Nine requested, and carol's notice that her endpoint's delivery gave up (delivery.exhausted).
    await eventually(lambda: smtp.count() == 10, what="emails delivered")
    await eventually(lambda: discord.count("guild1") == 13, what="discord messages delivered")
    dead_letters = await eventually(
        lambda: _delivery_dlq(settings, 3),
        timeout=60,
        what="the dead endpoint's delivery and 2 invalid ones in the DLQ",
    )

    # Webhooks: every signature verified, every id delivered once, filters honoured.
    assert receiver.bad_signatures() == 0
    assert set(receiver.successes_by_id("alice").values()) == {1}
    assert set(receiver.successes_by_id("alice")) == {r.dedup_key for r in webhooks[:20]}
    assert receiver.successes_by_id("alice-rankings") == {}
    # 3 failures then success: exactly one successful delivery of the one id.
    assert receiver.received["bob"].failures_answered == 3
    assert dict(receiver.successes_by_id("bob")) == {webhooks[20].dedup_key: 1}
    body = receiver.received["alice"].bodies[webhooks[0].dedup_key]
    assert body["type"] == "match.result" and body["data"]["title"] == "Notification 0"

    # The permanently failing endpoint: 4 attempts, then the DLQ, while everything else flowed.
    assert receiver.received["carol"].raw[webhooks[21].dedup_key] == 4
    failed = [(h, v) for h, v in dead_letters if h["dlq.error.code"] == "delivery_failed"]
    assert len(failed) == 1 and orjson.loads(failed[0][1])["dedup_key"] == webhooks[21].dedup_key
    assert "gave up after 4 attempts" in failed[0][0]["dlq.error.reason"] and "503" in failed[0][0]["dlq.error.reason"]
    invalid = sorted(h["dlq.error.reason"] for h, v in dead_letters if h["dlq.error.code"] == "invalid_delivery")
    assert len(invalid) == 2 and invalid[0].startswith("invalid delivery request") and invalid[1].startswith("not JSON")

    # Email: one message per key, both parts, Message-ID from the key, unsubscribe only on non-critical mail.
    assert set(smtp.by_message_id.values()) == {1}
    by_id = {m["Message-ID"]: m for m in smtp.messages}
    normal = by_id[f"<{emails[0].dedup_key}@crownstream.invalid>"]
    assert normal["To"] == "dora@example.com" and normal["Subject"] == "Notification 0"
    assert [p.get_content_type() for p in normal.iter_parts()] == ["text/plain", "text/html"]
    assert "Body of notification 0" in normal.get_body(("plain",)).get_content()
    assert (
        normal["List-Unsubscribe"].startswith("<http")
        and normal["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    )
    critical = by_id[f"<{emails[-1].dedup_key}@crownstream.invalid>"]
    assert critical["List-Unsubscribe"] is None
    (exhausted,) = [m for m in smtp.messages if m["To"] == "carol@example.com"]
    assert exhausted["Subject"] == "A webhook notification could not be delivered"

    # Discord: the bucket headers kept the sink within the limit (no 429 of its own making); the two forced
    # 429s were waited out for their retry_after; nothing rejected for size; each message once.
    assert discord.rejected_for_size == 0
    assert discord.rate_limited == 0 and discord.forced_429s == 2
    assert discord.early_requests == []
    assert set(discord.by_title.values()) == {1}
    big = next(m for m in discord.messages["guild1"] if m["embeds"][0]["title"].startswith("TTT"))
    assert len(big["embeds"][0]["fields"]) <= 25

    # Feed over the worker's HTTP API.
    async with httpx.AsyncClient(base_url=worker.url, headers={"Authorization": "Bearer test-token"}) as client:
        page = (await client.get("/users/frank/feed", params={"limit": 4})).json()
        assert page["unread_count"] == 10 and len(page["items"]) == 4 and page["next_before"]
        marked = (await client.post("/users/frank/feed/read", json={"ids": [page["items"][0]["id"]]})).json()
        assert marked == {"marked_read": 1, "changed": 1, "unread_count": 9, "unseen_count": 9}  # read = seen too
        assert (await client.post("/users/frank/feed/read", json={"all": True})).json()["unread_count"] == 0
        assert (await client.get("/users/frank/feed", headers={"Authorization": "Bearer wrong"})).status_code == 401

    states = await Ledger(engine).states()
    assert states == {"sent": 20 + 1 + 9 + 13 + 10 + 2, "dead": 1}  # + carol's notice, in-app and by email


async def _delivery_dlq(settings, n, channel: str | None = None):
    letters = await read_delivery_dead_letters(settings)
    if channel is not None:
        letters = [(h, v) for h, v in letters if orjson.loads(v).get("channel") == channel]
    return letters if len(letters) >= n else None


async def test_dead_lettered_deliveries_replay_once_the_endpoint_is_fixed(
    settings, topics, start_worker, database_url, engine
):
    from sqlalchemy import text

    from crownstream.sinks.dead_letter import replay

    with WebhookReceiver() as receiver, SmtpPeer() as smtp:
        endpoint, secret = await create_endpoint(engine, "gus", "http://placeholder", allow_private=True)
        url = receiver.add("gus", secret, always_fail=True)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": url, "i": endpoint.id}
            )
        start_worker(**sink_worker_overrides(database_url, smtp_port=smtp.port))
        requests = [make_request(i, "webhook", "gus") for i in range(3)]
        await produce(settings, requests)
        await eventually(lambda: _delivery_dlq(settings, 3, "webhook"), what="three deliveries in the DLQ")
        assert receiver.successes_by_id("gus") == {}

        receiver.add("gus", secret)  # the subscriber fixed their endpoint
        assert await replay(settings, channel="webhook", dry_run=True) == 3
        assert await replay(settings, channel="webhook") == 3
        await eventually(lambda: len(receiver.successes_by_id("gus")) == 3, what="replayed deliveries")
        # A plain duplicate of a delivered request (no replay header) changes nothing; nor does a second replay.
        await produce(settings, requests)
        assert await replay(settings, channel="webhook") == 3
        await eventually(lambda: _ledger_settled(engine), what="the ledger to settle")
        await asyncio.sleep(1.5)
        assert dict(receiver.successes_by_id("gus")) == {r.dedup_key: 1 for r in requests}
        assert await Ledger(engine).states("webhook") == {"sent": 3}
        # Each gave up once before the fix: gus was told of each, in-app and by email, once.
        assert await Ledger(engine).states("in_app") == {"sent": 3} and smtp.count() == 3


async def _ledger_settled(engine):
    states = await Ledger(engine).states()
    return set(states) == {"sent"}
