"""The typed producer API that platform backends use to send events to Crownstream.

    async with EventProducer() as producer:
        await producer.send(MatchCompleted(...))      # validated, keyed, batched; returns once queued
        await producer.flush()                        # waits until every queued event is acknowledged

Delivery is idempotent (``enable_idempotence``: a retried batch is written once) with ``acks=all``;
the pipeline also deduplicates by ``event_id``, so resending an event after a crash is always safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from crownstream.schemas.codec import encode, validate
from crownstream.schemas.events import Envelope
from crownstream.settings import Settings, get_settings
from crownstream.streams.errors import BrokerUnavailable
from crownstream.streams.topics import key_for, topic_for
from crownstream.tracing import otel
from crownstream.tracing.context import HEADER as TRACE_HEADER
from crownstream.tracing.context import TraceContext, for_event
from crownstream.tracing.context import parse as parse_traceparent


class EventRecord(NamedTuple):
    """An event as it goes on the wire: its topic, key (the subject it is ordered by), encoding and headers."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def event_record(model: Envelope, settings: Settings, trace: TraceContext | None = None) -> EventRecord:
    """``trace``: the context the event continues (a caller's span); by default the one its event id derives, so a
    resent event is the same trace (crownstream/tracing/context.py)."""
    trace = trace or for_event(model.event_id)
    return EventRecord(
        topic_for(model.type).full_name(settings),
        key_for(model),
        encode(model),
        [
            ("type", model.type.encode()),
            ("schema_version", str(model.schema_version).encode()),
            ("event_id", model.event_id.encode()),
            (TRACE_HEADER, trace.header.encode()),
        ],
    )


class EventProducer:
    def __init__(self, settings: Settings | None = None, **producer_options: Any) -> None:
        self._settings = settings or get_settings()
        options: dict[str, Any] = {
            "bootstrap_servers": self._settings.kafka_bootstrap,
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": self._settings.producer_linger_ms,
            "max_batch_size": 256 * 1024,
            "compression_type": None,
            "request_timeout_ms": 30_000,
        }
        options.update(producer_options)
        self._producer = AIOKafkaProducer(**options)
        self._pending: set[asyncio.Future] = set()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaConnectionError as exc:
            await self._producer.stop()
            raise BrokerUnavailable(self._settings.kafka_bootstrap, exc) from exc

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def send(self, event: Envelope | Mapping[str, Any], traceparent: str | None = None) -> asyncio.Future:
        """Validate ``event`` (a model or a dict), queue it for its topic and key, return its delivery future.

        ``traceparent``: the W3C trace context of the caller's span, when the event is part of a trace the backend
        already follows; without one (or with an invalid one) the event starts the trace its id derives.
        Raises ``InvalidEvent`` before anything is sent if the event breaks the contract.
        """
        model = validate(dict(event) if isinstance(event, Mapping) else event)
        caller = parse_traceparent(traceparent)
        trace = caller.child("send", model.event_id) if caller is not None else for_event(model.event_id)
        record = event_record(model, self._settings, trace)
        with otel.send_span(trace, record.topic, model.event_id, model.type, caller):
            future = await self._producer.send(record.topic, value=record.value, key=record.key, headers=record.headers)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    async def send_and_wait(self, event: Envelope | Mapping[str, Any]):
        """Send one event and wait until the broker has acknowledged it (``RecordMetadata``)."""
        return await (await self.send(event))

    async def send_many(self, events: Iterable[Envelope | Mapping[str, Any]]) -> int:
        count = 0
        for event in events:
            await self.send(event)
            count += 1
        await self.flush()
        return count

    async def flush(self) -> None:
        """Wait for every queued event; raise the first delivery error, if any."""
        if self._pending:
            await asyncio.gather(*list(self._pending))
