"""The webhook sink and dispatcher against a real PostgreSQL and a real loopback receiver (no broker):
target refusal, redirects, disabling a failing endpoint and telling its owner, replay from the DLQ."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from crownstream.devpeers import WebhookReceiver
from crownstream.settings import Settings
from crownstream.sinks.feed import FeedSink, list_feed
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.webhook_endpoints import create_endpoint, get_endpoints, set_enabled
from crownstream.sinks.webhooks import WebhookSink
from tests.support.services import REPO
from tests.support.sinks import SinkRun, eventually, make_request


def fast(database_url: str, **overrides) -> Settings:
    return Settings(
        **{
            "database_url": database_url,
            "sink_allow_private_targets": True,
            "sink_backoff_base_s": 0.05,
            "sink_backoff_max_s": 0.2,
            "sink_max_attempts": 3,
            "sink_poll_interval_s": 0.1,
            "sink_circuit_open_s": 0.2,
            "sink_circuit_open_max_s": 0.5,
            **overrides,
        }
    )


async def point(engine, endpoint_id: str, url: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": url, "i": endpoint_id})


def Run(settings: Settings, engine, notify=None, on_exhausted=None) -> SinkRun:
    """A webhook sink with its dispatcher; dead letters collected in ``run.dead``."""
    return SinkRun(WebhookSink(settings, Ledger(engine), notify_disabled=notify), settings, on_exhausted)


@pytest.fixture
def owner_told(engine, monkeypatch):
    """(the endpoints whose owner was told they were disabled, the worker's own notification path into this
    test's feed)."""
    from crownstream.agents.deliveries import _notify_endpoint_disabled, runtime

    told: list[str] = []
    monkeypatch.setattr(runtime, "sinks", {"in_app": FeedSink(Settings(), Ledger(engine))})

    async def notify(endpoint, reason):
        told.append(endpoint.id)
        await _notify_endpoint_disabled(endpoint, reason)

    return told, notify


async def test_loopback_target_is_refused_unless_allowed(engine, database_url):
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("ada", secret))
        settings = fast(database_url).model_copy(update={"sink_allow_private_targets": False})
        async with Run(settings, engine) as run:
            await run.sink.accept([make_request(1, "webhook", "ada")])
            await run.sink.flush()
            await eventually(lambda: run.dead, timeout=20, what="the refused delivery")
        assert "loopback" in run.dead[0][1].error or "plain http" in run.dead[0][1].error
        assert receiver.received["ada"].raw == {}


async def test_redirects_are_not_followed(engine, database_url):
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        receiver.add("x", secret)  # where the redirect points: must never be reached
        await point(engine, endpoint.id, f"{receiver.base_url}/redirect")
        async with Run(fast(database_url), engine) as run:
            await run.sink.accept([make_request(1, "webhook", "ada")])
            await run.sink.flush()
            await eventually(lambda: run.dead, timeout=30, what="the delivery to a redirecting endpoint giving up")
        assert "redirects are not followed" in run.dead[0][1].error
        assert receiver.received["x"].raw == {}


async def test_failing_endpoint_is_disabled_and_its_owner_told_once(engine, database_url, owner_told):
    told, notify = owner_told

    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("ada", secret, always_fail=True))
        settings = fast(database_url, webhook_disable_after_s=0.5).model_copy(update={"sink_max_attempts": 20})
        async with Run(settings, engine, notify) as run:
            await run.sink.accept([make_request(i, "webhook", "ada") for i in range(5)])
            await run.sink.flush()
            await eventually(
                lambda: len(run.dead) == 5, timeout=30, what="all five dead after the endpoint was disabled"
            )
        assert told == [endpoint.id]
        assert all("is disabled" in outcome.error or "gave up" in outcome.error for _, outcome in run.dead)
        page = await list_feed(engine, "ada")
        assert [i["notification_type"] for i in page["items"]] == ["webhook.endpoint_disabled"]
        assert page["items"][0]["critical"] and "503" in page["items"][0]["body"]
        # Re-enabled and fixed: replaying the dead deliveries delivers each exactly once.
        receiver.add("ada", secret)
        assert await set_enabled(engine, endpoint.id, True)
        requests = [claimed.request for claimed, _ in run.dead]
        run2 = Run(fast(database_url), engine)
        async with run2:
            await run2.sink.ledger.revive(await run2.sink.rows(requests))
            await run2.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("ada")) == 5, timeout=30, what="replayed deliveries")
            await run2.sink.ledger.revive(await run2.sink.rows(requests))  # a second replay: nothing is dead now
            await asyncio.sleep(0.5)
        assert set(receiver.successes_by_id("ada").values()) == {1}


async def test_a_gone_endpoint_is_disabled_at_once_and_its_owner_told_once(engine, database_url, owner_told):
    told, notify = owner_told

    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("ada", secret, answer=(410, b"gone", {})))
        # The default schedule (27.6 h): a 410 must not wait for it, nor for the five-day disable.
        settings = fast(database_url).model_copy(update={"sink_max_attempts": None})
        async with Run(settings, engine, notify) as run:
            await run.sink.accept([make_request(i, "webhook", "ada") for i in range(3)])
            await run.sink.flush()
            await eventually(lambda: len(run.dead) == 3, timeout=30, what="all three dead at the first answer")
        assert told == [endpoint.id]
        assert {outcome.reason_code for _, outcome in run.dead} <= {"endpoint_gone", "delivery_rejected"}
        assert any("410 Gone and is disabled" in outcome.error for _, outcome in run.dead)
        (current,) = (await get_endpoints(engine, [endpoint.id])).values()
        assert not current.enabled and "410 Gone" in current.disabled_reason
        page = await list_feed(engine, "ada")
        assert [i["notification_type"] for i in page["items"]] == ["webhook.endpoint_disabled"]


async def test_a_delivery_retries_on_its_channels_schedule_then_gives_up(engine, database_url):
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("ada", secret, always_fail=True))
        settings = fast(database_url, sink_retry_schedule_s={"webhook": (0.3, 0.6)}).model_copy(
            update={"sink_max_attempts": None}
        )
        async with Run(settings, engine) as run:
            await run.sink.accept([make_request(1, "webhook", "ada")])
            await run.sink.flush()
            await eventually(lambda: run.dead, timeout=30, what="the delivery giving up")
        assert sum(receiver.received["ada"].raw.values()) == 3
        assert "gave up after 3 attempts over 0.9 s" in run.dead[0][1].error


async def test_a_dead_endpoint_gets_one_probe_per_interval_and_never_delays_a_healthy_one(engine, database_url):
    with WebhookReceiver() as receiver:
        bad, bad_secret = await create_endpoint(engine, "bad", "http://x", allow_private=True)
        good, good_secret = await create_endpoint(engine, "good", "http://x", allow_private=True)
        await point(engine, bad.id, receiver.add("bad", bad_secret, always_fail=True))
        await point(engine, good.id, receiver.add("good", good_secret))
        settings = fast(
            database_url,
            sink_max_in_flight_per_target=4,
            sink_circuit_failures=3,
            sink_circuit_open_s=1.0,
            sink_circuit_open_max_s=1.0,
        ).model_copy(update={"sink_max_attempts": 1000})  # quick retries that never run out
        async with Run(settings, engine) as run:
            await run.sink.accept([make_request(i, "webhook", "bad") for i in range(40)])
            await run.sink.accept([make_request(100 + i, "webhook", "good") for i in range(20)])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("good")) == 20, timeout=20, what="the healthy one")
            await asyncio.sleep(4)
        requests_to_bad = sum(receiver.received["bad"].raw.values())
        # Without the circuit: 40 deliveries retried every 0.05-0.2 s, four at a time, for 4 s -> hundreds.
        # With it: the first wave (at most 4 in flight), then one probe a second.
        assert requests_to_bad <= 4 + 3 + 6, requests_to_bad
        async with engine.connect() as conn:
            attempts = (
                await conn.execute(text("SELECT max(attempt_count) FROM deliveries WHERE user_id = 'bad'"))
            ).scalar_one()
        assert attempts <= 8  # the deliveries waiting for the probe kept their attempts


async def test_an_open_circuit_moves_its_destinations_waiting_deliveries_out_of_the_claims(engine, database_url):
    """When a circuit opens, the dead endpoint's waiting deliveries become due at the probe time (one statement),
    so claims no longer step past them; a healthy endpoint's deliveries are left as they are."""
    with WebhookReceiver() as receiver:
        bad, bad_secret = await create_endpoint(engine, "bad", "http://x", allow_private=True)
        await point(engine, bad.id, receiver.add("bad", bad_secret, always_fail=True))
        settings = fast(
            database_url, sink_max_in_flight_per_target=2, sink_circuit_failures=2, sink_circuit_open_s=30.0
        ).model_copy(update={"sink_circuit_open_max_s": 30.0, "sink_max_attempts": 1000})
        async with Run(settings, engine) as run:
            await run.sink.accept([make_request(i, "webhook", "bad") for i in range(300)])
            await run.sink.flush()

            async def due_now() -> int:
                async with engine.connect() as conn:
                    return (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM deliveries WHERE target = :t AND state IN ('pending', 'failed') "
                                "AND next_attempt_at <= now()"
                            ),
                            {"t": bad.id},
                        )
                    ).scalar_one()

            await eventually(lambda: sum(receiver.received["bad"].raw.values()) >= 2, timeout=20, what="failures")
            await eventually(lambda: _zero(due_now()), timeout=10, what="the waiting deliveries moved")
        async with engine.connect() as conn:
            untouched = (
                await conn.execute(
                    text("SELECT count(*) FROM deliveries WHERE target = :t AND attempt_count = 0"), {"t": bad.id}
                )
            ).scalar_one()
        assert untouched >= 290  # moved, not attempted: they keep their attempts for after the probe


async def _zero(count) -> bool:
    return await count == 0


async def test_a_retry_after_slows_the_whole_endpoint_down(engine, database_url):
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "busy", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("busy", secret, answer=(429, b"slow down", {"Retry-After": "3"})))
        settings = fast(database_url, sink_max_in_flight_per_target=2, sink_retry_after_max_s=10.0)
        async with Run(settings.model_copy(update={"sink_max_attempts": 100}), engine) as run:
            await run.sink.accept([make_request(i, "webhook", "busy") for i in range(10)])
            await run.sink.flush()
            await eventually(lambda: receiver.received["busy"].raw, timeout=10, what="the first requests")
            await asyncio.sleep(2)
            told_to_wait = sum(receiver.received["busy"].raw.values())
        # The first wave (two in flight) heard "wait 3 s"; the eight others waited too instead of each being told.
        assert told_to_wait <= 2, told_to_wait


async def test_a_paused_channel_holds_its_deliveries_and_sends_them_in_order_when_resumed(engine, database_url):
    env = {**os.environ, "CROWNSTREAM_DATABASE_URL": database_url}
    exe = str(REPO / ".venv" / "bin" / "crownstream")

    def cli(*args):
        done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120, cwd=str(REPO))
        return done.returncode, done.stdout + done.stderr

    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("ada", secret))
        code, said = await asyncio.to_thread(cli, "channels", "pause", "webhook", "--reason", "moving the proxy")
        assert code == 0 and "webhook paused" in said
        async with Run(fast(database_url, sink_max_in_flight=1), engine) as run:  # one at a time: order is visible
            for i in range(5):  # accepted one after the other
                await run.sink.accept([make_request(i, "webhook", "ada")])
            await run.sink.flush()
            await asyncio.sleep(1.5)  # fifteen poll intervals
            assert receiver.received["ada"].raw == {}
            code, said = await asyncio.to_thread(cli, "channels", "status")
            assert code == 0 and "paused by cli:" in said and "moving the proxy" in said and "5 waiting" in said
            code, said = await asyncio.to_thread(cli, "channels", "resume", "webhook")
            assert code == 0 and "webhook resumed" in said
            await eventually(lambda: len(receiver.successes_by_id("ada")) == 5, timeout=20, what="the held ones")
        sent = [body["data"]["title"] for body in receiver.received["ada"].bodies.values()]
        assert sent == sorted(sent, key=lambda title: int(title.split()[-1])), sent  # oldest first
        assert set(receiver.successes_by_id("ada").values()) == {1}
        code, said = await asyncio.to_thread(cli, "channels", "pause", "fax")
        assert code == 2 and "unknown channel 'fax'" in said


async def test_a_delivery_that_gives_up_tells_its_owner_in_app_and_by_email(engine, database_url, monkeypatch):
    from crownstream.agents.deliveries import _notify_exhausted, runtime
    from crownstream.sinks.email import EmailSink

    ledger = Ledger(engine)
    monkeypatch.setattr(
        runtime, "sinks", {"in_app": FeedSink(Settings(), ledger), "email": EmailSink(Settings(), ledger)}
    )
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("ada", secret, always_fail=True))
        async with Run(fast(database_url), engine, on_exhausted=_notify_exhausted) as run:
            await run.sink.accept([make_request(1, "webhook", "ada")])
            await run.sink.flush()
            await eventually(lambda: run.dead, timeout=30, what="the delivery giving up")
    page = await list_feed(engine, "ada")
    (notice,) = page["items"]
    assert notice["notification_type"] == "delivery.exhausted" and notice["critical"]
    assert "Notification 1" in notice["body"] and "gave up after 3 attempts" in notice["body"]
    async with engine.connect() as conn:
        email = (
            await conn.execute(
                text("SELECT user_id, request->'contact'->>'email' FROM deliveries WHERE channel = 'email'")
            )
        ).all()
    assert email == [("ada", "ada@example.com")]  # the email notice, in the ledger for the email sink


def test_cli_upgrade_prune_and_preview(database_url, engine):
    env = {**os.environ, "CROWNSTREAM_DATABASE_URL": database_url}
    exe = str(REPO / ".venv" / "bin" / "crownstream")

    def run(*args):
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120, cwd=str(REPO))

    assert run("db", "upgrade").returncode == 0
    pruned = run("ledger", "prune", "--days", "30")
    assert pruned.returncode == 0 and "pruned 0 delivered rows older than 30 days" in pruned.stdout
    preview = run("email", "preview", "match.result")
    assert preview.returncode == 0 and "text/plain" in preview.stdout and "<!doctype html>" in preview.stdout
    assert "List-Unsubscribe" not in preview.stdout  # the preview shows bodies; headers are tested elsewhere
    digest = run("email", "preview", "digest.daily", "--digest", "--part", "text")
    assert digest.returncode == 0 and "Match 1: Team <Alpha>" in digest.stdout
    # An Ed25519 endpoint from the command line: it prints the public key, never the private one.
    env["CROWNSTREAM_SINK_ALLOW_PRIVATE_TARGETS"] = "true"
    added = run("webhooks", "add", "ada", "http://127.0.0.1:9/x", "--scheme", "v1a", "--rate-limit", "2.5")
    assert added.returncode == 0, added.stderr
    endpoint_id, key = added.stdout.strip().split("\t")
    assert len(endpoint_id) == 32 and key.startswith("whpk_") and "whsk_" not in added.stdout + added.stderr
    refused = run("webhooks", "add", "ada", "http://127.0.0.1:9/x", "--rate-limit", "0")
    assert refused.returncode != 0 and "--rate-limit" in refused.stderr


async def test_a_slow_endpoint_does_not_take_every_slot(engine, database_url):
    with WebhookReceiver() as receiver:
        slow, slow_secret = await create_endpoint(engine, "slow", "http://x", allow_private=True)
        fast_ep, fast_secret = await create_endpoint(engine, "fast", "http://x", allow_private=True)
        await point(engine, slow.id, receiver.add("slow", slow_secret, delay_s=1.0))
        await point(engine, fast_ep.id, receiver.add("fast", fast_secret))
        settings = fast(database_url, sink_max_in_flight=8, sink_max_in_flight_per_target=2, sink_claim_batch=8)
        async with Run(settings, engine) as run:
            # The slow endpoint's rows are older: a plain oldest-first dispatcher would send them all first.
            await run.sink.accept([make_request(i, "webhook", "slow") for i in range(10)])
            await run.sink.accept([make_request(i, "webhook", "fast") for i in range(20)])
            await run.sink.flush()
            await eventually(
                lambda: len(receiver.successes_by_id("fast")) == 20,
                timeout=30,
                interval=0.02,
                what="the fast endpoint's deliveries",
            )
            # By then the slow endpoint has had at most its 2 slots' worth answered.
            assert len(receiver.successes_by_id("slow")) <= 2
            await eventually(lambda: len(receiver.successes_by_id("slow")) == 10, timeout=60, what="the slow ones")
        assert set(receiver.successes_by_id().values()) == {1}
        assert run.dead == []


def most_in_a_second(times: list[float]) -> int:
    """The most arrivals in any window of one second."""
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def test_a_rate_limited_endpoint_is_paced_and_its_neighbour_is_not_delayed(engine, database_url):
    """Its owner's limit of 5 a second: its 12 deliveries arrive no faster than that, none failed or spent an
    attempt waiting, while an unlimited neighbour's 40 (accepted after them) all go out at once."""
    from crownstream.sinks.webhook_endpoints import set_rate_limit

    with WebhookReceiver() as receiver:
        limited, limited_secret = await create_endpoint(
            engine, "lim", "http://x", allow_private=True, rate_limit_per_second=5.0
        )
        free, free_secret = await create_endpoint(engine, "free", "http://x", allow_private=True)
        other, other_secret = await create_endpoint(engine, "other", "http://x", allow_private=True)
        assert limited.rate_limit_per_second == 5.0 and free.rate_limit_per_second is None
        await point(engine, limited.id, receiver.add("lim", limited_secret))
        await point(engine, free.id, receiver.add("free", free_secret))
        await point(engine, other.id, receiver.add("other", other_secret))
        # A second limit set through set_rate_limit, as the owner's API does.
        assert await set_rate_limit(engine, other.id, 4.0)
        async with Run(fast(database_url), engine) as run:
            # The limited endpoint's rows are older: a claim takes them first.
            await run.sink.accept([make_request(i, "webhook", "lim") for i in range(12)])
            await run.sink.accept([make_request(i, "webhook", "other") for i in range(6)])
            await run.sink.accept([make_request(i, "webhook", "free") for i in range(40)])
            await run.sink.flush()
            await eventually(
                lambda: len(receiver.successes_by_id("free")) == 40, timeout=30, interval=0.02, what="the free ones"
            )
            free_done = receiver.arrivals("free")[-1]
            await eventually(
                lambda: len(receiver.successes_by_id("lim")) == 12 and len(receiver.successes_by_id("other")) == 6,
                timeout=60,
                interval=0.05,
                what="the paced ones",
            )
        lim, oth = receiver.arrivals("lim"), receiver.arrivals("other")
        # No faster than the limit: 12 at 5 a second span at least 11/5 s; no second holds more than 5 (one more
        # for the loopback's jitter between two sends 1/5 s apart).
        assert lim[-1] - lim[0] >= 11 / 5 * 0.9, lim
        assert most_in_a_second(lim) <= 6, lim
        assert oth[-1] - oth[0] >= 5 / 4 * 0.9 and most_in_a_second(oth) <= 5, oth
        # ... and paced, not stalled: the whole run took a few poll intervals more than the limit asks.
        assert lim[-1] - lim[0] <= 11 / 5 + 3.0, lim
        # The neighbour did not wait for them: all 40 were in before the limited endpoint's last.
        assert free_done < lim[-1] and free_done - lim[0] < 11 / 5
        assert run.dead == []
        assert set(receiver.successes_by_id().values()) == {1}
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT state, attempt_count, jsonb_array_length(attempts) FROM deliveries "
                        "WHERE target IN (:a, :b)"
                    ),
                    {"a": limited.id, "b": other.id},
                )
            ).all()
        # Waiting cost nothing: each was attempted once, and sent.
        assert len(rows) == 18 and {tuple(r) for r in rows} == {("sent", 1, 1)}


async def test_a_v1a_endpoint_signs_with_ed25519_and_the_receiver_verifies(engine, database_url):
    """An endpoint created with the Ed25519 scheme: its owner holds only the public key, the receiver verifies with
    it, and refuses a tampered delivery."""
    import httpx

    from crownstream.sinks.signing import public_key_of, signer

    with WebhookReceiver() as receiver:
        endpoint, public = await create_endpoint(engine, "ed", "http://x", allow_private=True, signature_scheme="v1a")
        assert public.startswith("whpk_") and endpoint.signature_scheme == "v1a"
        assert endpoint.public()["public_keys"] == [public]
        stored = (await get_endpoints(engine, [endpoint.id]))[endpoint.id].secrets
        assert len(stored) == 1 and stored[0].startswith("whsk_") and public_key_of(stored[0]) == public
        hook = receiver.add("ed", public)
        await point(engine, endpoint.id, hook)
        async with Run(fast(database_url), engine) as run:
            await run.sink.accept([make_request(i, "webhook", "ed") for i in range(3)])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("ed")) == 3, timeout=30, what="three verified")
        assert receiver.bad_signatures() == 0 and run.dead == []
        # Signed as the sink signs, then tampered with on the way: the receiver refuses it.
        body = b'{"type":"match.result","data":{}}'
        headers = signer(tuple(stored)).headers("msg_x", body)
        async with httpx.AsyncClient() as http:
            assert (await http.post(hook, content=body, headers=headers)).status_code == 204
            tampered = await http.post(hook, content=body.replace(b"{}", b'{"x":1}'), headers=headers)
        assert tampered.status_code == 401 and "No matching signature" in tampered.text
        assert receiver.bad_signatures() == 1


async def test_a_rotation_to_ed25519_keeps_the_old_secret_signing_for_the_grace_window(engine, database_url):
    """v1 -> v1a: during the grace window a receiver still holding the old HMAC secret verifies, and so does one
    switched to the new public key; after it only the public key works."""
    from crownstream.sinks.webhook_endpoints import rotate_secret

    with WebhookReceiver() as receiver:
        endpoint, old_secret = await create_endpoint(engine, "rot", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("rot", old_secret))
        public, until = await rotate_secret(engine, endpoint.id, grace_s=2.0, signature_scheme="v1a")
        assert public.startswith("whpk_") and until is not None
        rotated = (await get_endpoints(engine, [endpoint.id]))[endpoint.id]
        assert rotated.signature_scheme == "v1a" and rotated.secrets[1] == old_secret
        settings = fast(database_url, sink_max_attempts=2)
        async with Run(settings, engine) as run:
            await run.sink.accept([make_request(1, "webhook", "rot")])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("rot")) == 1, timeout=30, what="old secret, grace")
            receiver.set_secret("rot", public)
            await run.sink.accept([make_request(2, "webhook", "rot")])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("rot")) == 2, timeout=30, what="new public key")
            await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)  # the window ends
            receiver.set_secret("rot", old_secret)
            await run.sink.accept([make_request(3, "webhook", "rot")])
            await run.sink.flush()
            await eventually(lambda: len(run.dead) == 1, timeout=30, what="refused with the old secret only")
            assert receiver.bad_signatures() >= 1 and len(receiver.successes_by_id("rot")) == 2
            receiver.set_secret("rot", public)
            await run.sink.accept([make_request(4, "webhook", "rot")])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("rot")) == 3, timeout=30, what="new key after")


async def test_raising_a_limit_paces_the_waiting_backlog_anew(engine, database_url):
    """Deliveries handed back under a low limit wait for slots far apart; when the owner removes the limit they go
    out at once instead of keeping the old, slow schedule — still each attempted once."""
    from crownstream.sinks.webhook_endpoints import set_rate_limit

    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(
            engine, "slowed", "http://x", allow_private=True, rate_limit_per_second=0.5
        )
        await point(engine, endpoint.id, receiver.add("slowed", secret))
        async with Run(fast(database_url), engine) as run:
            await run.sink.accept([make_request(i, "webhook", "slowed") for i in range(6)])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("slowed")) == 1, timeout=30, what="the first")

            async def waiting():  # handed back, each due at a slot of its own: the last 10 s away at 0.5/s
                async with engine.connect() as conn:
                    return (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM deliveries WHERE target = :t AND state = 'pending' "
                                "AND next_attempt_at > now() + interval '5 seconds'"
                            ),
                            {"t": endpoint.id},
                        )
                    ).scalar_one()

            await eventually(waiting, timeout=10, what="the rest scheduled far apart")
            assert len(receiver.successes_by_id("slowed")) == 1
            assert await set_rate_limit(engine, endpoint.id, None)
            await eventually(
                lambda: len(receiver.successes_by_id("slowed")) == 6, timeout=4, what="the backlog at once"
            )
        assert run.dead == [] and set(receiver.successes_by_id().values()) == {1}
        assert not await set_rate_limit(engine, "0" * 32, 1.0)  # no such endpoint
        with pytest.raises(ValueError, match="messages a second"):
            await set_rate_limit(engine, endpoint.id, 0.0)


async def test_two_workers_keep_an_endpoint_to_its_rate_and_the_other_takes_over(engine, database_url):
    """Pacing is kept in memory, so one worker at a time delivers to a limited endpoint (the holder of its advisory
    lock): two workers together still send no more than its 4 a second, not 8. When the holder stops, the other
    takes the endpoint over."""
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(
            engine, "pair", "http://x", allow_private=True, rate_limit_per_second=4
        )
        free, free_secret = await create_endpoint(engine, "single", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("pair", secret))
        await point(engine, free.id, receiver.add("single", free_secret))
        settings = fast(database_url)
        a = SinkRun(WebhookSink(settings, Ledger(engine, "worker-a")), settings)
        b = SinkRun(WebhookSink(settings, Ledger(engine, "worker-b")), settings)
        async with a, b:
            # Faster than the limit, and to both workers in turn: each finds fresh rows to claim.
            for i in range(12):
                run = (a, b)[i % 2]
                await run.sink.accept([make_request(i, "webhook", "pair"), make_request(i, "webhook", "single")])
                await run.sink.flush()
                await asyncio.sleep(0.05)
            await eventually(lambda: len(receiver.successes_by_id("pair")) == 12, timeout=30, what="twelve paced")
            first = receiver.arrivals("pair")
            assert first[-1] - first[0] >= 11 / 4 * 0.9, first
            assert most_in_a_second(first) <= 5, first
            # Exactly one of them delivers to it (the unlimited endpoint is anybody's).
            holders = [run for run in (a, b) if run.dispatcher._pace_owner.holding()]
            assert len(holders) == 1
            holder, other = holders[0], (b if holders[0] is a else a)
            await holder.__aexit__(None, None, None)  # the holder stops: its session and its locks go
            await other.sink.accept([make_request(100 + i, "webhook", "pair") for i in range(4)])
            await other.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("pair")) == 16, timeout=30, what="taken over")
            assert other.dispatcher._pace_owner.holding()
            await holder.__aenter__()  # started again for the exit stack of `async with`
        later = receiver.arrivals("pair")[12:]
        assert later[-1] - later[0] >= 3 / 4 * 0.9, later
        assert a.dead == b.dead == [] and set(receiver.successes_by_id().values()) == {1}


async def test_a_worker_whose_pacing_session_is_killed_takes_the_endpoint_again(engine, database_url):
    """PostgreSQL ends the session holding a limited endpoint's lock (a restart, an operator's
    pg_terminate_backend): the worker notices at its next poll, lets the endpoint wait, takes the lock again on a
    fresh session, and delivers the rest — still paced, none lost or failed."""
    from crownstream.sinks.pacing_owner import LOCK_NAMESPACE

    async def lock_holders() -> list[int]:
        async with engine.connect() as conn:
            query = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns AND granted"
            return list((await conn.execute(text(query), {"ns": LOCK_NAMESPACE})).scalars())

    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(
            engine, "kill", "http://x", allow_private=True, rate_limit_per_second=5
        )
        await point(engine, endpoint.id, receiver.add("kill", secret))
        async with Run(fast(database_url), engine) as run:
            await run.sink.accept([make_request(i, "webhook", "kill") for i in range(4)])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("kill")) == 4, timeout=30, what="the first four")
            [pid] = await lock_holders()
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
            await run.sink.accept([make_request(10 + i, "webhook", "kill") for i in range(6)])
            await run.sink.flush()
            await eventually(lambda: len(receiver.successes_by_id("kill")) == 10, timeout=30, what="the other six")
            [again] = await lock_holders()
            assert again != pid  # a fresh session holds it
        later = receiver.arrivals("kill")[4:]
        assert later[-1] - later[0] >= 5 / 5 * 0.9 and most_in_a_second(later) <= 6, later
        assert run.dead == [] and set(receiver.successes_by_id().values()) == {1}
        assert await lock_holders() == []  # released when the dispatcher stopped
