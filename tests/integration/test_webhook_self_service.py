"""An endpoint's owner helps themselves, over HTTP on a real worker with its sinks: the recent deliveries with every
attempt (time, status, latency, code, the answer cut short), resending one, recovering the failed ones since a
time, pausing (deliveries held, not lost) and resuming — under their own token only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from crownstream.devpeers import WebhookReceiver
from crownstream.settings import Settings
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.web.auth import mint_user_token
from tests.support.sinks import eventually, make_request, produce, sink_worker_overrides

USER_KEY = "user-token-key-" + "k" * 40
TOKENS = Settings(user_token_key=USER_KEY, dev_mode=False)


def token(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_user_token(user_id, 3600, TOKENS)}"}


async def test_the_owner_sees_resends_recovers_pauses_and_resumes_and_nobody_else_can(
    settings, topics, start_worker, database_url, engine
):
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://127.0.0.1/placeholder", allow_private=True)
        hook = receiver.add("ada", secret, fail_first=3)  # the first three answers are 503
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": hook, "i": endpoint.id}
            )
        worker = start_worker(**sink_worker_overrides(database_url, user_token_key=USER_KEY, sink_max_attempts=2))
        base = f"{worker.url}/webhooks/{endpoint.id}"
        async with httpx.AsyncClient(timeout=30) as http:
            # Nobody but the owner (or staff): another user is refused, no token is refused.
            assert (await http.get(f"{base}/deliveries", headers=token("bob"))).status_code == 403
            assert (await http.get(f"{base}/deliveries")).status_code == 401

            await produce(settings, [make_request(i, "webhook", "ada") for i in range(2)])

            async def listed(state=None):
                query = {"state": state} if state else {}
                r = await http.get(f"{base}/deliveries", params=query, headers=token("ada"))
                assert r.status_code == 200, r.text
                return r.json()["deliveries"]

            dead = await eventually(lambda: _with(listed("dead"), 1), timeout=60, what="two attempts, then dead")
            attempts = dead[0]["attempts"]
            assert [(a["status"], a["code"]) for a in attempts] == [("failed", 503), ("dead", 503)]
            assert all(a["latency_ms"] is not None and "try again later" in a["error"] for a in attempts)
            assert "worker" not in attempts[0]

            # Recover everything that failed since an hour ago: the receiver answers now.
            since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            r = await http.post(f"{base}/recover", json={"since": since}, headers=token("ada"))
            assert r.status_code == 202 and r.json()["recovered"] >= 1
            await eventually(lambda: len(receiver.successes_by_id("ada")) == 2, timeout=60, what="both delivered")
            # The receiver has them before the ledger records them (outcomes are written in batches, ~50 ms later).
            sent = await eventually(lambda: _with(listed("sent"), 2), timeout=10, what="both recorded as sent")

            # Resend one that was delivered: the receiver gets it again, with the same webhook-id.
            one = sent[0]["id"]
            r = await http.post(f"{base}/deliveries/{one}/resend", headers=token("ada"))
            assert r.status_code == 202
            await eventually(lambda: receiver.successes_by_id("ada")[one] == 2, timeout=30, what="the resend")
            assert (await http.post(f"{base}/deliveries/{'f' * 64}/resend", headers=token("ada"))).status_code == 404

            # Paused: new deliveries are held in the ledger; resumed: they go out.
            assert (await http.post(f"{base}/pause", headers=token("ada"))).json() == {
                "endpoint_id": endpoint.id,
                "paused": True,
            }
            await asyncio.sleep(1)  # a pause takes effect within the workers' poll interval (0.2 s here)
            await produce(settings, [make_request(10 + i, "webhook", "ada") for i in range(3)])
            await eventually(lambda: _with(listed("pending"), 3), timeout=60, what="three held")
            await asyncio.sleep(2)
            assert len(receiver.successes_by_id("ada")) == 2
            assert (await http.post(f"{base}/resume", headers=token("ada"))).status_code == 200
            await eventually(lambda: len(receiver.successes_by_id("ada")) == 5, timeout=60, what="the held three")

            # Bad input is a 4xx that says what was wrong.
            bad = await http.post(f"{base}/recover", json={"since": "yesterday"}, headers=token("ada"))
            assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]
            bad = await http.get(f"{base}/deliveries", params={"state": "lost"}, headers=token("ada"))
            assert bad.status_code == 400 and "state must be one of" in bad.json()["error"]


async def _with(rows, n):
    rows = await rows
    return rows if len(rows) >= n else None


async def test_the_owner_sets_a_rate_limit_and_an_ed25519_endpoint_and_bad_input_is_a_clear_4xx(
    settings, topics, start_worker, database_url, engine
):
    """Over HTTP on a real worker: an endpoint registered with v1a and a rate limit gives its owner the public key
    only; its deliveries verify with it and arrive no faster than the limit; the owner changes and removes the limit
    and rotates between schemes; nobody else can; bad input is a 400 that says what was wrong."""
    with WebhookReceiver() as receiver:
        hook = receiver.add("ada", "whsec_" + "A" * 44)  # replaced by the public key the API hands out
        worker = start_worker(**sink_worker_overrides(database_url, user_token_key=USER_KEY))
        async with httpx.AsyncClient(timeout=30) as http:
            created = await http.post(
                f"{worker.url}/users/ada/webhooks",
                json={"url": hook, "signature_scheme": "v1a", "rate_limit_per_second": 4},
                headers=token("ada"),
            )
            assert created.status_code == 201, created.text
            answer = created.json()
            public, endpoint = answer["public_key"], answer["endpoint"]
            assert public.startswith("whpk_") and "secret" not in answer and "whsk_" not in created.text
            assert endpoint["signature_scheme"] == "v1a" and endpoint["public_keys"] == [public]
            assert endpoint["rate_limit_per_second"] == 4
            receiver.set_secret("ada", public)
            base = f"{worker.url}/webhooks/{endpoint['id']}"
            # A limit applies within the sinks' poll interval (README): the dispatcher reads the limits that often.
            await asyncio.sleep(1)

            await produce(settings, [make_request(i, "webhook", "ada") for i in range(8)])
            await eventually(lambda: len(receiver.successes_by_id("ada")) == 8, timeout=60, what="eight verified")
            arrivals = receiver.arrivals("ada")
            assert receiver.bad_signatures() == 0
            assert arrivals[-1] - arrivals[0] >= 7 / 4 * 0.9, arrivals  # no faster than 4 a second

            # The owner changes the limit, then removes it; the listing shows it (and never a private key).
            for limit in (2.5, 1000):
                r = await http.put(f"{base}/rate-limit", json={"per_second": limit}, headers=token("ada"))
                assert r.status_code == 200 and r.json() == {
                    "endpoint_id": endpoint["id"],
                    "rate_limit_per_second": limit,
                }
            r = await http.delete(f"{base}/rate-limit", headers=token("ada"))
            assert r.status_code == 200 and r.json()["rate_limit_per_second"] is None
            listing = await http.get(f"{worker.url}/users/ada/webhooks", headers=token("ada"))
            assert listing.json()["endpoints"][0]["rate_limit_per_second"] is None and "whsk_" not in listing.text

            # Rotations: no body keeps the scheme (a new public key), a body switches it (a v1 secret, once).
            r = await http.post(f"{base}/rotate", headers=token("ada"))
            assert r.status_code == 200 and r.json()["public_key"] != public and "secret" not in r.json()
            r = await http.post(f"{base}/rotate", json={"signature_scheme": "v1"}, headers=token("ada"))
            assert r.status_code == 200 and r.json()["secret"].startswith("whsec_") and "whsk_" not in r.text

            # Nobody but the owner.
            assert (
                await http.put(f"{base}/rate-limit", json={"per_second": 1}, headers=token("bob"))
            ).status_code == 403
            assert (await http.delete(f"{base}/rate-limit")).status_code == 401
            missing = await http.put(
                f"{worker.url}/webhooks/{'0' * 32}/rate-limit", json={"per_second": 1}, headers=token("ada")
            )
            assert missing.status_code == 404

            # Bad input: a 400 that says what was wrong, never a 500.
            for bad in (
                {"per_second": 0},
                {"per_second": -3},
                {"per_second": "fast"},
                {"per_second": True},
                {},
                {"per_second": 1e9},
            ):
                r = await http.put(f"{base}/rate-limit", json=bad, headers=token("ada"))
                assert r.status_code == 400 and "per_second must be a number of messages a second" in r.json()["error"]
            r = await http.put(f"{base}/rate-limit", content=b"[1]", headers=token("ada"))
            assert r.status_code == 400 and "JSON object" in r.json()["error"]
            r = await http.post(f"{base}/rotate", json={"signature_scheme": "v2"}, headers=token("ada"))
            assert r.status_code == 400 and "signature_scheme must be one of ['v1', 'v1a']" in r.json()["error"]
            r = await http.post(
                f"{worker.url}/users/ada/webhooks",
                json={"url": hook, "rate_limit_per_second": 0},
                headers=token("ada"),
            )
            assert r.status_code == 400 and "rate_limit_per_second must be" in r.json()["error"]
            r = await http.post(
                f"{worker.url}/users/ada/webhooks", json={"url": hook, "signature_scheme": 1}, headers=token("ada")
            )
            assert r.status_code == 400 and "signature_scheme" in r.json()["error"]
        log = worker.log_path.read_text(errors="replace")
        assert "whsk_" not in log  # no private key in the worker's log
