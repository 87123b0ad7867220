"""One event followed end to end on a real worker: ``crownstream trace`` reports every hop's records and every
delivery with its ledger state, and the users a preference kept out, with the reason; every record carries the
event's trace; the webhook request carries it too; and the spans exported over OTLP have the ids the records carry.
"""

from __future__ import annotations

import asyncio

import httpx
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import text

from crownstream.devpeers import WebhookReceiver
from crownstream.processes import free_port
from crownstream.schemas.examples import example
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import DELIVERIES, NOTIFICATION_AUDIENCES, NOTIFICATION_USERS
from crownstream.trace_report import render, trace_event
from crownstream.tracing.context import delivery, for_event, parse, processing
from tests.support.kafka_read import read_records
from tests.support.sinks import eventually, sink_worker_overrides


class OtlpReceiver:
    """An OTLP/HTTP collector stand-in on loopback: keeps every span it is sent (protobuf, as the SDK sends)."""

    def __init__(self) -> None:
        self.spans: list = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def by_span_id(self) -> dict[str, object]:
        return {span.span_id.hex(): span for span in self.spans}


async def preferences_set(url: str, user_id: str) -> bool:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{url}/users/{user_id}/preferences", headers={"Authorization": "Bearer test-token"})
    return r.status_code == 200 and not r.json()["defaults"]


def prefs(user_id: str, preferences: dict) -> dict:
    return example("preferences.updated", event_id=f"prefs-{user_id}", user_id=user_id, preferences=preferences)


async def test_a_result_is_traced_through_every_hop_to_each_delivery_and_each_suppression(
    settings, topics, start_worker, database_url, engine
):
    collector = OtlpReceiver()
    await collector.start()
    hooks = WebhookReceiver().start()
    try:
        endpoint, secret = await create_endpoint(engine, "u2", "http://127.0.0.1/placeholder", allow_private=True)
        hook_url = hooks.add("u2", secret)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"), {"u": hook_url, "i": endpoint.id}
            )
        # Enough attempts that the email to port 9 is still being retried when the trace is read (with the sinks'
        # usual 4 fast attempts it could be dead already on a slow run).
        worker = start_worker(
            **sink_worker_overrides(database_url, smtp_port=9, otlp_endpoint=collector.url, sink_max_attempts=1000)
        )
        async with EventProducer(settings) as producer:
            # u1 opted out of email; u2 takes sponsor news by email and webhook too; u3 never set preferences
            # (the defaults: in-app and email, and no email address).
            await producer.send(prefs("u1", {"contact": {"email": "u1@example.org"}, "opt_out_channels": ["email"]}))
            await producer.send(
                prefs(
                    "u2",
                    {
                        "contact": {"email": "u2@example.org"},
                        "types": {"sponsor.approved": ["in_app", "email", "webhook"]},
                    },
                )
            )
            await producer.send(
                example("roster.changed", event_id="roster-1", team_id="team-a", added=["u1", "u2", "u3"], removed=[])
            )
        for user in ("u1", "u2"):  # applied before the event that notifies their team
            await eventually(lambda u=user: preferences_set(worker.url, u), timeout=60, what=f"{user}'s preferences")
        await asyncio.sleep(1)  # the roster (before the event on its topic) has gone through the audiences hop
        async with EventProducer(settings) as producer:
            await producer.send(example("sponsor.approved", event_id="sponsor-1", team_id="team-a", sponsor="Acme"))

        async def traced():
            report = await trace_event(
                "sponsor-1", since_s=600, settings=settings.model_copy(update={"database_url": database_url})
            )
            in_ledger = [h for h in report.deliveries() if h.delivery["ledger"]]
            return report if len(in_ledger) == 5 and hooks.successes_by_id("u2") else None

        report = await eventually(traced, timeout=90, what="every delivery request of sponsor-1 in the ledger")
    finally:
        hooks.stop()
    rendered = render(report)

    # The input record and each hop: the event -> the team's audience partition -> the users' partition -> the
    # delivery topics, each record linked to the processing that wrote it.
    root = for_event("sponsor-1")
    assert report.found_input and report.trace_id == root.trace_id
    topics_by_hop = [report.short_names[h.topic] for h in report.hops]
    assert topics_by_hop[0] == "crownstream.platform-events"
    assert NOTIFICATION_AUDIENCES.name in topics_by_hop and NOTIFICATION_USERS.name in topics_by_hop
    for index, hop in enumerate(report.hops[1:], start=1):
        assert hop.parent is not None and hop.parent < index, f"hop {index} is not linked to what wrote it"
    requested = {(h.delivery["user_id"], h.delivery["channel"]) for h in report.deliveries()}
    assert requested == {("u1", "in_app"), ("u2", "in_app"), ("u2", "email"), ("u2", "webhook"), ("u3", "in_app")}
    states = {
        (h.delivery["user_id"], h.delivery["channel"]): h.delivery["ledger"][0]["state"] for h in report.deliveries()
    }
    assert states[("u1", "in_app")] == "sent" and states[("u2", "webhook")] == "sent"
    assert states[("u2", "email")] in {"failed", "sending", "pending"}  # nothing listens on port 9: retrying

    # The users a preference kept out, with the reason.
    suppressed = {(s.user_id, s.channel): s.reason for s in report.suppressed}
    assert suppressed == {("u1", "email"): "opted_out", ("u3", "email"): "no_address"}
    assert "email to u1: suppressed, opted_out: the user opted out of this channel" in rendered
    assert report.for_user("u1").suppressed[0].reason == "opted_out"
    assert {h.delivery["user_id"] for h in report.for_user("u1").deliveries()} == {"u1"}

    # Every record of the trace carries it in its header: the delivery requests too.
    (request_record,) = [
        r
        for r in await read_records(settings.kafka_bootstrap, DELIVERIES["webhook"].full_name(settings))
        if r.key == b"u2"
    ]
    carried = parse(dict(request_record.headers)["traceparent"])
    assert carried.trace_id == root.trace_id

    # The webhook request continues the trace: the span of that delivery attempt, derived from the request's.
    (msg_id,) = hooks.successes_by_id("u2")
    sent = parse(hooks.received["u2"].traceparents[msg_id])
    assert sent == delivery(carried, msg_id, endpoint.id)

    # OTLP: the spans exported are the ones the headers name, parent to child, with the same trace id.
    input_hop = report.hops[0]
    consumer_span = processing(root, input_hop.topic, input_hop.partition, input_hop.key.encode(), "sponsor-1")

    async def exported():
        spans = collector.by_span_id()
        return spans if consumer_span.span_id in spans and sent.span_id in spans else None

    spans = await eventually(exported, timeout=30, what="the spans of the trace exported over OTLP")
    first = spans[consumer_span.span_id]
    assert first.trace_id.hex() == root.trace_id and first.parent_span_id.hex() == root.span_id
    assert spans[sent.span_id].parent_span_id.hex() == carried.span_id
    assert worker.alive()
    await collector.stop()
