"""Turns a Faust stream of raw records into valid events, diverting everything else to the dead-letter topic.

Input topics use the raw serializer on purpose: if Faust decoded values itself, one malformed record would
raise inside the stream and stop the agent. Here a bad record costs one DLQ write and processing goes on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import faust

from crownstream.app import app
from crownstream.commit_gate import gated_events
from crownstream.metrics import DEAD_LETTERS, EVENTS_IN
from crownstream.schemas.codec import Rejection, decode
from crownstream.schemas.events import Envelope
from crownstream.settings import get_settings
from crownstream.streams.dead_letter import dead_letter_headers
from crownstream.streams.topics import DEAD_LETTER, TopicSpec

log = logging.getLogger(__name__)

dead_letter_topic = app.topic(
    DEAD_LETTER.full_name(), key_serializer="raw", value_serializer="raw", partitions=DEAD_LETTER.partition_count()
)


def input_topic(spec: TopicSpec) -> faust.TopicT:
    return app.topic(
        spec.full_name(), key_serializer="raw", value_serializer="raw", partitions=spec.partition_count()
    )


async def valid_events(stream: faust.StreamT, agent_name: str) -> AsyncIterator[Envelope]:
    max_bytes = get_settings().max_event_bytes
    # Each event is handled inside its partition's commit gate: no commit splits its effects.
    async for record in gated_events(app, stream):
        message = record.message
        result = decode(record.value, max_bytes=max_bytes)
        if isinstance(result, Rejection):
            await send_to_dead_letter(record, result, agent_name)
            continue
        EVENTS_IN.labels(message.topic, result.type).inc()
        yield result


async def send_to_dead_letter(record: faust.EventT, rejection: Rejection, agent_name: str) -> None:
    message = record.message
    log.warning(
        "dead-lettered record",
        extra={
            "code": rejection.code,
            "reason": rejection.reason,
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "event_id": rejection.event_id,
        },
    )
    DEAD_LETTERS.labels(message.topic, rejection.code).inc()
    await dead_letter_topic.send(
        key=record.key,
        value=record.value if record.value is not None else b"",
        headers=dead_letter_headers(rejection, message.topic, message.partition, message.offset, agent_name),
    )
