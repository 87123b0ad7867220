"""Input that used to wedge delivery, against the real broker and PostgreSQL: a NUL that PostgreSQL refuses
(in a contact field, in a receiver's reply), a Retry-After of 1e999, receivers' 4xx answers. Each affects
only its own delivery — to the delivery DLQ with a reason — while the channel and partition go on."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from crownstream.devpeers import DiscordStandIn, SmtpPeer, WebhookReceiver
from crownstream.schemas.deliveries import Contact, DeliveryRequest
from crownstream.settings import Settings
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.streams.topics import DELIVERIES
from tests.support.sinks import (
    eventually,
    make_request,
    produce,
    read_delivery_dead_letters,
    sink_worker_overrides,
)

pytestmark = pytest.mark.slow


def with_nul(request: DeliveryRequest) -> bytes:
    """The request's JSON with a NUL in the contact's display name (written past the model, as a producer
    that does not validate would)."""
    body = orjson.loads(request.encode())
    body["contact"]["display_name"] = "Ann\u0000Lee"
    return orjson.dumps(body)


async def test_a_nul_in_a_contact_goes_to_the_dlq_and_the_partition_goes_on(
    settings, topics, start_worker, database_url, engine
):
    with SmtpPeer() as smtp:
        good = [make_request(i, "email", "dora") for i in range(6)]
        bad = make_request(100, "email", "dora")
        start_worker(**sink_worker_overrides(database_url, smtp_port=smtp.port, dev_mode=True))
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            topic = DELIVERIES["email"].full_name(settings)
            # One key, so one partition: the bad record sits between good ones.
            for value in [good[0].encode(), with_nul(bad), *(r.encode() for r in good[1:])]:
                await producer.send_and_wait(topic, key=b"dora", value=value)
        finally:
            await producer.stop()
        await eventually(lambda: smtp.count() == 6, timeout=60, what="the good requests around the bad one delivered")
        letters = await eventually(lambda: _dlq(settings, 1), timeout=30, what="the NUL request in the DLQ")
        assert len(letters) == 1
        headers, value = letters[0]
        assert orjson.loads(value)["dedup_key"] == bad.dedup_key
        # Refused at the edge (the model) or by PostgreSQL (SQLSTATE class 22): either way with its reason.
        assert headers["dlq.error.code"] in ("invalid_delivery", "unstorable_delivery"), headers
        assert "U+0000" in headers["dlq.error.reason"] or "SQLSTATE 22" in headers["dlq.error.reason"], headers
        assert set(smtp.by_message_id.values()) == {1}


async def test_requests_postgresql_refuses_are_dead_lettered_one_by_one(settings, topics, database_url, engine):
    """The agent's storing step itself (past the model's checks): a batch holding a request with a NUL is
    stored request by request, the refused one reaches the DLQ with PostgreSQL's SQLSTATE, the rest are
    accepted."""
    from crownstream.agents import deliveries as agent
    from crownstream.sinks.dead_letter import DeliveryDeadLetters
    from crownstream.sinks.feed import FeedSink

    sink = FeedSink(Settings(database_url=database_url), Ledger(engine))
    dead_letters = DeliveryDeadLetters(settings)
    await dead_letters.start()
    old = agent.runtime.dead_letters
    agent.runtime.dead_letters = dead_letters
    try:
        good = [make_request(i, "in_app", "erin") for i in range(4)]
        bad = make_request(9, "in_app", "erin").model_copy(update={"title": "bad\u0000title"})  # past the model
        pending = [
            (
                SimpleNamespace(
                    key=b"erin",
                    value=b"{}",
                    message=SimpleNamespace(topic="deliveries.in_app", partition=0, offset=i, headers=[]),
                ),
                r,
            )
            for i, r in enumerate([good[0], good[1], bad, good[2], good[3]])
        ]
        await asyncio.wait_for(agent._store("accepting", "in_app", pending, sink.accept), 60)
    finally:
        agent.runtime.dead_letters = old
        await dead_letters.stop()
    assert await Ledger(engine).states("in_app") == {"sent": 4}
    letters = await read_delivery_dead_letters(settings)
    assert len(letters) == 1
    headers = letters[0][0]
    assert headers["dlq.error.code"] == "unstorable_delivery" and headers["dlq.source.offset"] == "2"
    assert "SQLSTATE 22021" in headers["dlq.error.reason"] and headers["dlq.delivery.channel"] == "in_app"


async def test_nul_replies_and_endless_retry_after_do_not_stall_a_channel(
    settings, topics, start_worker, database_url, engine
):
    with DiscordStandIn(limit=50, per_s=1.0) as discord, WebhookReceiver() as receiver:
        nul400 = discord.script("nul400", 400, b'{"message": "bad\x00reply\x01\x1b[31m"}')
        nul503 = discord.script("nul503", 503, b"oops\x00\x00")
        forever = discord.script(
            "forever",
            429,
            b'{"retry_after": 1e999, "global": false}',
            {"Retry-After": "1e999", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1e999"},
        )
        ok_url = discord.webhook_url("ok")
        slow_ep, slow_secret = await create_endpoint(engine, "hold", "http://placeholder", allow_private=True)
        ok_ep, ok_secret = await create_endpoint(engine, "fine", "http://placeholder", allow_private=True)
        gone_ep, gone_secret = await create_endpoint(engine, "gone", "http://placeholder", allow_private=True)
        urls = {
            slow_ep.id: receiver.add("hold", slow_secret, answer=(429, b"slow down\x00", {"Retry-After": "1e999"})),
            ok_ep.id: receiver.add("fine", ok_secret),
            gone_ep.id: receiver.add("gone", gone_secret, answer=(410, b"gone\x00" + b"x" * 100_000, {})),
        }
        async with engine.begin() as conn:
            for endpoint_id, url in urls.items():
                await conn.execute(
                    text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": url, "i": endpoint_id}
                )

        def discord_request(i, user, url):
            return make_request(i, "discord", user, contact=Contact(discord_webhook_url=url))

        stuck = [
            discord_request(0, "u-forever", forever),
            discord_request(1, "u-nul400", nul400),
            discord_request(2, "u-nul503", nul503),
            make_request(3, "webhook", "hold"),
            make_request(4, "webhook", "gone"),
        ]
        flowing = [discord_request(10 + i, "u-ok", ok_url) for i in range(10)] + [
            make_request(20 + i, "webhook", "fine") for i in range(10)
        ]
        start_worker(
            **sink_worker_overrides(database_url, dev_mode=True, sink_max_attempts=3, sink_retry_after_max_s=2.0)
        )
        await produce(settings, stuck)
        await produce(settings, flowing)
        await eventually(
            lambda: discord.count("ok") == 10 and len(receiver.successes_by_id("fine")) == 10,
            timeout=60,
            what="the other deliveries flowing past the stuck ones",
        )
        letters = await eventually(lambda: _dlq(settings, 5), timeout=90, what="the five stuck deliveries dead")

    by_key = {orjson.loads(v)["dedup_key"]: h for h, v in letters}
    assert len(by_key) == 5
    reasons = {r.user_id: by_key[r.dedup_key] for r in stuck}
    # 4xx other than 408/429: permanent at once (one attempt), the reply's text cleaned of NUL and escapes.
    assert (
        reasons["u-nul400"]["dlq.error.code"] == "delivery_rejected"
        and reasons["u-nul400"]["dlq.delivery.attempts"] == "1"
    )
    assert (
        "HTTP 400" in reasons["u-nul400"]["dlq.error.reason"] and "badreply" in reasons["u-nul400"]["dlq.error.reason"]
    )
    # 410 Gone: the endpoint is disabled at once (its owner told), the delivery dead after its one attempt.
    assert reasons["gone"]["dlq.error.code"] == "endpoint_gone" and reasons["gone"]["dlq.delivery.attempts"] == "1"
    # 5xx and 429 (whatever it asked for): failed attempts, retried, then given up.
    for user in ("u-nul503", "u-forever", "hold"):
        assert reasons[user]["dlq.error.code"] == "delivery_failed", reasons[user]
        assert reasons[user]["dlq.delivery.attempts"] == "3", reasons[user]
    assert "asked to wait inf s" in reasons["u-forever"]["dlq.error.reason"]
    assert "asked to wait inf s" in reasons["hold"]["dlq.error.reason"]
    assert discord.scripted_answers["forever"] == 3 and discord.scripted_answers["nul503"] == 3
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT string_agg(attempts::text || coalesce(last_error, ''), '') FROM deliveries")
            )
        ).scalar_one()
        reasons_shown = dict(
            (await conn.execute(text("SELECT user_id, disabled_reason FROM webhook_endpoints"))).tuples().all()
        )
    assert "\\u0000" not in stored and "\x00" not in stored and "\\u001b" not in stored
    assert len(stored) < 200_000  # the 100 kB error page was read up to the cap and cut to a snippet
    assert reasons_shown["hold"] is None and reasons_shown["fine"] is None  # failing, not yet disabled
    assert "410 Gone" in reasons_shown["gone"] and "\x00" not in reasons_shown["gone"]  # gone: disabled at once
    ledger = Ledger(engine)

    async def settled():
        # A dead delivery is dead-lettered before its row is recorded dead: wait for the rows.
        states = [await ledger.states(channel) for channel in ("webhook", "discord", "in_app")]
        return states if states[2].get("sent") == 4 and "sending" not in states[0] | states[1] else None

    webhook, discord_states, in_app = await eventually(settled, timeout=30, what="the ledger rows recorded")
    assert webhook == {"sent": 10, "dead": 2} and discord_states == {"sent": 10, "dead": 3}
    # In-app: the gone endpoint's owner told, and the owners of the three that gave up (delivery.exhausted).
    assert in_app == {"sent": 4}


async def _dlq(settings, n):
    letters = await read_delivery_dead_letters(settings)
    return letters if len(letters) >= n else None


async def test_a_stored_request_this_version_cannot_read_does_not_stop_claims(database_url, engine):
    """A ledger row whose stored request no longer validates (written by another version) is marked dead
    with the reason when claimed; the claim loop and the other rows go on."""
    from crownstream.sinks.base import Dispatcher
    from crownstream.sinks.feed import FeedSink, list_feed
    from crownstream.sinks.ledger import ledger_row

    settings = Settings(database_url=database_url, sink_poll_interval_s=0.1)
    sink = FeedSink(settings, Ledger(engine))
    good = [make_request(i, "in_app", "ivy") for i in range(3)]
    await sink.ledger.accept([ledger_row(r) for r in good])  # pending rows, as a DLQ replay leaves them
    async with engine.begin() as conn:
        await conn.execute(
            text("""INSERT INTO deliveries (dedup_key, target, channel, user_id, notification_type, request)
                                   VALUES ('broken', '', 'in_app', 'ivy', 'match.result', CAST(:r AS jsonb))"""),
            {"r": orjson.dumps({"dedup_key": "broken", "channel": "in_app"}).decode()},
        )
    dispatcher = Dispatcher(sink, settings, lambda claimed, outcome: asyncio.sleep(0))
    dispatcher.start()
    try:
        await eventually(lambda: _states(engine), timeout=20, what="every row settled")
    finally:
        await dispatcher.stop()
    assert await Ledger(engine).states("in_app") == {"sent": 3, "dead": 1}
    async with engine.connect() as conn:
        reason = (await conn.execute(text("SELECT last_error FROM deliveries WHERE dedup_key = 'broken'"))).scalar_one()
    assert reason.startswith("the stored request is not a valid delivery request")
    assert (await list_feed(engine, "ivy"))["unread_count"] == 3


async def _states(engine):
    states = await Ledger(engine).states("in_app")
    return states if set(states) <= {"sent", "dead"} and sum(states.values()) == 4 else None


async def test_one_deadline_covers_a_whole_request_that_trickles(database_url, engine):
    """A receiver that answers at once and then sends its body a byte every 0.2 s: no single phase is slow
    (httpx's per-phase timeouts would never fire), yet the request ends at the sink's deadline, a failed
    attempt called "timed out"."""
    import time

    from aiohttp import web

    from crownstream.processes import free_port
    from crownstream.sinks.discord import DiscordSink
    from crownstream.sinks.ledger import Claimed
    from crownstream.sinks.webhooks import WebhookSink

    async def trickle(request):
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        for _ in range(200):
            await response.write(b"x")
            await asyncio.sleep(0.2)
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", trickle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = Settings(
        database_url=database_url, sink_allow_private_targets=True, webhook_timeout_s=1.5, discord_timeout_s=1.5
    )
    endpoint, _ = await create_endpoint(engine, "tom", f"http://127.0.0.1:{port}/hooks/tom", allow_private=True)
    outcomes = {}
    sinks = {"webhook": WebhookSink(settings, Ledger(engine)), "discord": DiscordSink(settings, Ledger(engine))}
    try:
        for channel, sink in sinks.items():
            await sink.start()
            request = make_request(
                1, channel, "tom", contact=Contact(discord_webhook_url=f"http://127.0.0.1:{port}/api/webhooks/1/t")
            )
            started = time.monotonic()
            outcome = await sink.deliver(
                Claimed(request.dedup_key, endpoint.id if channel == "webhook" else "", request, 1, False)
            )
            outcomes[channel] = (outcome, time.monotonic() - started)
    finally:
        for sink in sinks.values():
            await sink.stop()
        await runner.cleanup()
    for channel, (outcome, took) in outcomes.items():
        assert outcome.status == "failed" and outcome.error == "timed out", (channel, outcome)
        assert 1.4 < took < 3.0, (channel, took)


async def test_an_outcome_postgresql_refuses_does_not_wedge_recording(database_url, engine):
    """An outcome PostgreSQL refuses (here a status code beyond its integer column) is recorded without its
    details instead of being retried forever while every later outcome of the channel waits behind it."""
    from crownstream.sinks.base import Dispatcher
    from crownstream.sinks.feed import FeedSink
    from crownstream.sinks.ledger import Outcome, ledger_row

    class Odd(FeedSink):
        async def deliver(self, claimed):
            if claimed.request.source_event_id == "evt-0":
                return Outcome.sent(code=2**40)  # out of int32: SQLSTATE 22003 / asyncpg DataError
            return Outcome.sent(code=200)

    settings = Settings(database_url=database_url, sink_poll_interval_s=0.1)
    sink = Odd(settings, Ledger(engine))
    await sink.ledger.accept([ledger_row(make_request(i, "in_app", "kim")) for i in range(5)])
    dispatcher = Dispatcher(sink, settings, lambda claimed, outcome: asyncio.sleep(0))
    dispatcher.start()
    try:
        await eventually(lambda: _all_sent(engine, 5), timeout=20, what="every outcome recorded")
    finally:
        await dispatcher.stop()
    async with engine.connect() as conn:
        codes = sorted(
            (await conn.execute(text("SELECT coalesce((attempts->-1->>'code')::int, -1) FROM deliveries")))
            .scalars()
            .all()
        )
    assert codes == [-1, 200, 200, 200, 200]


async def test_a_stop_records_every_outcome_already_known(database_url, engine):
    """stop() while a batch of outcomes is being written (a slow PostgreSQL): the write completes; no row is left
    leased ("sending") to be sent again after its lease by whoever claims it — the outcome was known."""
    from crownstream.sinks.base import Dispatcher
    from crownstream.sinks.feed import FeedSink
    from crownstream.sinks.ledger import ledger_row

    writing = asyncio.Event()

    class SlowLedger(Ledger):
        async def record(self, batch):
            writing.set()
            await asyncio.sleep(0.5)
            await super().record(batch)

    settings = Settings(database_url=database_url, sink_poll_interval_s=0.1)
    sink = FeedSink(settings, SlowLedger(engine))
    await sink.ledger.accept([ledger_row(make_request(i, "in_app", "lou")) for i in range(20)])
    dispatcher = Dispatcher(sink, settings, lambda claimed, outcome: asyncio.sleep(0))
    dispatcher.start()
    await asyncio.wait_for(writing.wait(), timeout=20)
    await dispatcher.stop()
    assert await Ledger(engine).states("in_app") == {"sent": 20}


async def _all_sent(engine, n):
    return (await Ledger(engine).states("in_app")) == {"sent": n}


async def test_a_delivery_dlq_copy_always_fits_and_a_truncated_one_is_not_replayed(settings, topics):
    """A request of ~1 MB dead-lettered with its headers would be over the producer's request size: the copy keeps
    its head with size and hash (the real broker takes it), and `deliveries replay` skips it."""
    import hashlib

    from crownstream.sinks.dead_letter import DeliveryDeadLetters, replay

    dead_letters = DeliveryDeadLetters(settings)
    await dead_letters.start()
    value = b"x" * 999_000
    try:
        await dead_letters.send_raw(
            b"user-1",
            value,
            [
                ("dlq.error.code", b"invalid_delivery"),
                ("dlq.error.reason", b"r" * 20_000),
                ("dlq.delivery.channel", b"in_app"),
            ],
        )
    finally:
        await dead_letters.stop()
    ((headers, copy),) = await read_delivery_dead_letters(settings)
    assert headers["dlq.value.truncated"] == "true" and len(copy) < len(value) and value.startswith(copy)
    assert headers["dlq.value.original_size"] == str(len(value))
    assert headers["dlq.value.sha256"] == hashlib.sha256(value).hexdigest()
    assert await replay(settings, dry_run=True) == 0
