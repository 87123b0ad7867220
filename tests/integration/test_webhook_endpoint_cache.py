"""The webhook sink reads an endpoint from PostgreSQL once per cache interval, however many deliveries to it are
in flight at once (real PostgreSQL, real loopback receiver; the lookup is counted, not replaced)."""

from __future__ import annotations

from crownstream.devpeers import WebhookReceiver
from crownstream.sinks import webhooks
from crownstream.sinks.webhook_endpoints import create_endpoint
from tests.integration.test_webhook_sink import Run, fast, point
from tests.support.sinks import eventually, make_request

DELIVERIES = 300


async def test_concurrent_deliveries_to_one_endpoint_share_one_lookup(engine, database_url, monkeypatch):
    lookups: list[list[str]] = []
    real = webhooks.get_endpoints

    async def counted(engine_, ids):
        lookups.append(list(ids))
        return await real(engine_, ids)

    monkeypatch.setattr(webhooks, "get_endpoints", counted)
    with WebhookReceiver() as receiver:
        endpoint, secret = await create_endpoint(engine, "ada", "http://x", allow_private=True)
        await point(engine, endpoint.id, receiver.add("ada", secret))
        settings = fast(database_url, sink_max_in_flight=128, sink_max_in_flight_per_target=128, sink_claim_batch=128)
        async with Run(settings, engine) as run:
            await run.sink.accept([make_request(i, "webhook", "ada") for i in range(DELIVERIES)])
            await run.sink.flush()
            await eventually(lambda: len(receiver.received["ada"].raw) >= DELIVERIES, timeout=60, what="every delivery")
        assert not run.dead
    assert len(receiver.received["ada"].raw) == DELIVERIES
    # One lookup per 5-second interval at most (the run takes a few seconds): not one per delivery.
    assert 1 <= len(lookups) <= 3, f"{len(lookups)} endpoint lookups for {DELIVERIES} deliveries"
