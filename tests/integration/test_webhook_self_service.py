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
            sent = await listed("sent")
            assert len(sent) == 2

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
