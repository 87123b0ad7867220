"""Agents: one per delivery topic (``DELIVERIES[channel]``). Each decodes at the edge (invalid -> the
delivery dead-letter topic with the reason), accepts a batch of requests into the ledger, and returns: the
sending is done by the channel's dispatcher, which claims due rows from the ledger. So a slow SMTP server or
a dead webhook never stalls a partition, and the Kafka offset of a request is committed only after the
request is durable in PostgreSQL — if PostgreSQL is down the agent waits and retries; nothing is acked.

Only what can heal is retried: a request PostgreSQL refuses (SQLSTATE class 22/23, e.g. a NUL in a contact
field) goes to the delivery dead-letter topic as ``unstorable_delivery`` and the partition moves on, and an
unexpected error of a batch dead-letters its records (``delivery_agent_error``) — no exception leaves an agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import faust
import mode

from crownstream.app import app
from crownstream.metrics import DEAD_LETTERS
from crownstream.schemas.codec import Rejection
from crownstream.schemas.deliveries import (
    CHANNELS,
    Contact,
    DeliveryRequest,
    InvalidDelivery,
    decode_delivery,
    dedup_key,
)
from crownstream.settings import get_settings
from crownstream.sinks import backlog, db
from crownstream.sinks.base import Dispatcher, Sink
from crownstream.sinks.dead_letter import HEADER_CHANNEL, REPLAY_HEADER, DeliveryDeadLetters
from crownstream.sinks.ledger import Claimed, Ledger, Outcome, clean_text, describe_db_error, is_transient
from crownstream.sinks.registry import build_sinks
from crownstream.streams.dead_letter import dead_letter_headers
from crownstream.streams.topics import DELIVERIES
from crownstream.tracing.context import parse as parse_traceparent
from crownstream.tracing.propagation import header_value

log = logging.getLogger(__name__)

BATCH = 500
BATCH_WITHIN_S = 0.02


class DeliveryRuntime:
    """Per worker: the database engine, one sink and one dispatcher per channel, the DLQ producer. Started by
    whichever comes first — an agent's first batch or the app's service start — exactly once."""

    def __init__(self) -> None:
        self.sinks: dict[str, Sink] = {}
        self.dispatchers: list[Dispatcher] = []
        self.dead_letters: DeliveryDeadLetters | None = None
        self._backlog: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._started = False

    async def ensure_started(self) -> DeliveryRuntime:
        if self._started:
            return self
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._started:
                await self._start()
                self._started = True
        return self

    async def _start(self) -> None:
        settings = get_settings()
        if settings.database_migrate_on_start:
            await _retrying("database migration", lambda: asyncio.to_thread(db.upgrade, settings.database_url))
        ledger = Ledger(db.engine(settings))
        self.dead_letters = DeliveryDeadLetters(settings)
        await _retrying("starting the delivery dead-letter producer", self.dead_letters.start)
        self.sinks = build_sinks(
            settings, ledger, notify_disabled=_notify_endpoint_disabled, notify_gone=_notify_discord_gone
        )
        for sink in self.sinks.values():
            await sink.start()
            # Whoever owns a webhook endpoint or a Discord webhook is told when a delivery to it gives up.
            exhausted = _notify_exhausted if sink.channel in ("webhook", "discord") else None
            dispatcher = Dispatcher(sink, settings, self.dead_letters, on_exhausted=exhausted)
            dispatcher.start()
            self.dispatchers.append(dispatcher)
        self._backlog = asyncio.ensure_future(backlog.keep_refreshed(ledger, settings.backlog_refresh_s))

    async def stop(self) -> None:
        if not self._started:
            return
        if self._backlog is not None:
            self._backlog.cancel()
        for dispatcher in self.dispatchers:
            await dispatcher.stop()
        for sink in self.sinks.values():
            await sink.stop()
        if self.dead_letters is not None:
            await self.dead_letters.stop()
        await db.engine().dispose()
        self._started = False


runtime = DeliveryRuntime()


@app.service
class DeliveryService(mode.Service):
    """Starts the runtime with the worker (so due retries are sent even when no new request arrives) and
    stops it — in-flight sends finished and recorded — when the worker shuts down."""

    _starting: asyncio.Task | None = None

    async def on_start(self) -> None:
        # In the background: with PostgreSQL down at boot the runtime waits for it, and that must not hold
        # up the rest of the worker (standings, queries) — only deliveries wait.
        self._starting = asyncio.ensure_future(runtime.ensure_started())

    async def on_stop(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        await runtime.stop()


async def _retrying(what: str, attempt, transient_only: bool = False) -> object:
    """Retry until it works (PostgreSQL down or restarting: no record is acked until then). With
    ``transient_only`` an error no retry can fix is raised instead (ledger.is_transient)."""
    delay = 0.2
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if transient_only and not is_transient(exc):
                raise
            log.warning(f"{what} failed; retrying", extra={"error": repr(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)


async def _tell_owner(
    user_id: str,
    notification_type: str,
    source: str,
    title: str,
    body: str,
    data: dict,
    contact: Contact | None = None,
) -> None:
    """A notice of the delivery system itself to a user: in-app, and by email too when ``contact`` has an address.
    Ordinary delivery requests (critical: no opt-out applies), deduplicated like every other: the key is derived
    from ``source``, so a user is told once per occurrence however many workers notice it."""
    channels = ("in_app", "email") if contact is not None and contact.email else ("in_app",)
    for channel in channels:
        sink = runtime.sinks.get(channel)
        if sink is None:
            continue
        await sink.accept(
            [
                DeliveryRequest(
                    dedup_key=dedup_key(source, user_id, channel, notification_type),
                    channel=channel,
                    notification_type=notification_type,
                    user_id=user_id,
                    source_event_id=source,
                    critical=True,
                    created_at=datetime.now(UTC),
                    title=title,
                    body=body,
                    data=data,
                    contact=contact or Contact(),
                )
            ]
        )
        await sink.flush()


async def _notify_endpoint_disabled(endpoint, reason: str) -> None:
    """Tell the owner in-app that their endpoint was disabled (once per time it started failing)."""
    failing_since = endpoint.failing_since.isoformat() if endpoint.failing_since else ""
    await _tell_owner(
        endpoint.user_id,
        "webhook.endpoint_disabled",
        f"webhook-endpoint-disabled:{endpoint.id}:{failing_since}",
        "A webhook endpoint of yours was disabled",
        f"{endpoint.url} kept failing and no longer receives deliveries. Last error: {reason[:500]}",
        {"endpoint_id": endpoint.id, "url": endpoint.url},
    )


async def _notify_exhausted(claimed: Claimed, outcome: Outcome) -> None:
    """A delivery gave up after its whole retry schedule: a ``delivery.exhausted`` notice to its owner, in-app and
    by email (when they have an address), with what failed, so that they can fix the receiver and have it resent."""
    request = claimed.request
    where = f"webhook endpoint {claimed.target}" if request.channel == "webhook" else f"your {request.channel} webhook"
    await _tell_owner(
        request.user_id,
        "delivery.exhausted",
        f"delivery-exhausted:{claimed.dedup_key}:{claimed.target}",
        f"A {request.channel} notification could not be delivered",
        f'"{request.title}" could not be delivered to {where}: {outcome.error or "it kept failing"}'[:3500]
        + " Fix the receiver, then ask for it to be sent again.",
        {"dedup_key": claimed.dedup_key, "target": claimed.target, "channel": request.channel},
        request.contact,
    )


async def _notify_discord_gone(user_id: str, url_sha256: str, reason: str) -> None:
    """Tell a user in-app that their Discord webhook no longer exists (once per webhook: by its URL digest)."""
    await _tell_owner(
        user_id,
        "discord.webhook_gone",
        f"discord-webhook-gone:{url_sha256}",
        "Your Discord webhook no longer exists",
        "Discord says the webhook in your notification preferences was deleted; Discord notifications stop "
        f"until you set a new one. Discord answered: {reason[:300]}",
        {"url_sha256": url_sha256},
    )


async def _dead_letter_invalid(event: faust.EventT, channel: str, reason: str, code: str = "invalid_delivery") -> None:
    message = event.message
    reason = clean_text(reason, 4000) or code
    log.warning(
        "dead-lettered delivery request",
        extra={
            "reason": reason,
            "code": code,
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
        },
    )
    DEAD_LETTERS.labels(message.topic, code).inc()
    # Through the runtime's own idempotent producer, awaited before the batch is acknowledged: at least once
    # (a crash right after may repeat the DLQ record), never lost. Not through the input partition's Kafka
    # transaction: a rebalance can leave that producer outside a transaction, and the agent would crash.
    # An invalid request has no channel header (it cannot be replayed as it is); one refused by PostgreSQL
    # keeps its channel, so that it can be replayed once what it carries is fixed upstream.
    assert runtime.dead_letters is not None
    channel_header = b"" if code == "invalid_delivery" else channel.encode()
    await _retrying(
        "dead-lettering a delivery request",
        lambda: runtime.dead_letters.send_raw(
            event.key,
            event.value if event.value is not None else b"",
            [
                *dead_letter_headers(
                    Rejection(code, reason), message.topic, message.partition, message.offset, f"deliveries-{channel}"
                ),
                (HEADER_CHANNEL, channel_header),
            ],
        ),
    )


def _is_replay(event: faust.EventT) -> bool:
    return header_value(event.message.headers, REPLAY_HEADER) is not None


Pending = list[tuple[faust.EventT, DeliveryRequest]]


async def accept_batch(stream: faust.StreamT, channel: str, events: Sequence[faust.EventT]) -> None:
    sink = (await runtime.ensure_started()).sinks[channel]
    fresh: Pending = []
    replayed: Pending = []
    for event in events:
        try:
            request = decode_delivery(event.value)
            if request.channel != channel:
                raise InvalidDelivery(
                    f"channel {request.channel!r} on the {channel!r} topic; "
                    f"fan-out must write each request to DELIVERIES[request.channel]"
                )
        except InvalidDelivery as exc:
            await _dead_letter_invalid(event, channel, str(exc))
            continue
        except Exception as exc:  # the decoder's contract is "never raises"; if it does, this record only
            await _dead_letter_invalid(event, channel, f"decoding failed: {type(exc).__name__}: {exc}")
            continue
        traceparent = header_value(event.message.headers)
        if traceparent is not None and request.traceparent is None and parse_traceparent(traceparent) is not None:
            # The ledger row (the outbox) keeps it for every attempt.
            request = request.model_copy(update={"traceparent": traceparent.decode()})
        (replayed if _is_replay(event) else fresh).append((event, request))
    if fresh:
        await _store(f"accepting {channel} deliveries", channel, fresh, sink.accept)
    if replayed:
        await _store(f"reviving {channel} deliveries", channel, replayed, lambda requests: _revive(sink, requests))
    await sink.flush()
    # Backpressure: stop pulling records while the dispatcher has all it can send in flight.
    while sink.backpressure():  # noqa: ASYNC110  (polled: the dispatcher's tasks signal no event when room frees up)
        await asyncio.sleep(0.01)


async def _store(what: str, channel: str, pending: Pending, store) -> None:
    """Make requests durable: transient errors (PostgreSQL away) are retried with nothing acked; an error no
    retry fixes (SQLSTATE class 22/23: a NUL in a contact field, a value out of range; a bug) must not stall
    the partition: the batch is stored one request at a time and the refused ones go to the delivery DLQ."""
    try:
        await _retrying(what, lambda: store([request for _, request in pending]), transient_only=True)
        return
    except Exception as exc:
        if len(pending) == 1:
            event, request = pending[0]
            log.warning(
                "delivery request refused by the database",
                extra={"dedup_key": request.dedup_key, "error": describe_db_error(exc)},
            )
            await _dead_letter_invalid(
                event, channel, f"the request cannot be stored: {describe_db_error(exc)}", code="unstorable_delivery"
            )
            return
    for item in pending:
        await _store(what, channel, [item], store)


async def _revive(sink: Sink, requests: list[DeliveryRequest]) -> None:
    await sink.ledger.revive(await sink.rows(requests))


def _make_agent(channel: str):
    topic = app.topic(
        DELIVERIES[channel].full_name(),
        key_serializer="raw",
        value_serializer="raw",
        partitions=DELIVERIES[channel].partition_count(),
    )

    async def deliver(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
            try:
                await accept_batch(stream, channel, events)
            except Exception as exc:  # never out of the agent (a crash-restart is no recovery path)
                log.exception(
                    "delivery batch failed; its records go to the delivery dead-letter topic",
                    extra={"channel": channel, "count": len(events)},
                )
                for event in events:
                    await _dead_letter_invalid(
                        event,
                        channel,
                        f"delivery agent error: {type(exc).__name__}: {exc}",
                        code="delivery_agent_error",
                    )

    deliver.__name__ = f"deliver_{channel}"
    deliver.__qualname__ = deliver.__name__
    return app.agent(topic, name=f"deliveries-{channel.replace('_', '-')}")(deliver)


AGENTS = {channel: _make_agent(channel) for channel in CHANNELS}
