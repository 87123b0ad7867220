"""Turns a Faust stream of raw records into applied events, diverting everything else to the dead-letter topic.

Every record an agent reads ends one of two ways: it takes effect, or it reaches the dead-letter topic with a
reason code. Never a third: an exception that escapes an agent makes Faust crash and restart it, and the
record is then committed past without a trace. So:

- Input topics use the raw serializer on purpose: if Faust decoded values itself, one malformed record would
  raise inside the stream and stop the agent. ``decode`` never raises.
- A valid event of a type that belongs on another topic is refused (``wrong_topic``): the producer routes by
  type (streams/topics.py), so such a record is a misrouted write, and the agent of this topic would either
  ignore it silently or apply it where its key does not partition it.
- A handler that raises for one record: that record goes to the DLQ as ``handler_error`` (exception type and
  message) and the agent goes on with the next one. The rules of the event contract are the handlers' own
  (schemas/events.py runs the engine's validators), so this is for bugs, not for bad input. Agents process
  micro-batches (``process_events``, ``process_internal``; crownstream/engine/batches.py), each record a savepoint
  of the batch's write cache: the table writes the handler made before it raised are dropped; its sends, already
  in the input partition's transaction, stay. The tournament agent drops its cached views of the event's stage so
  they are rebuilt from the tables.
- Kafka's own errors (a fenced producer, a lost broker) are not the record's fault: they propagate as before,
  and Faust's recovery (rebalance, transaction abort) re-reads the record.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any

import faust
from aiokafka.errors import MessageSizeTooLargeError
from pydantic import ValidationError as PydanticValidationError

from crownstream.agents.errors import RejectRecord as RejectRecord
from crownstream.app import app
from crownstream.engine import KAFKA_FAILURES, Batch, gated_batches
from crownstream.logs import redact_text
from crownstream.metrics import AGENT_RECORDS, DEAD_LETTERS, EVENTS_IN
from crownstream.schemas.codec import Rejection, cap_reason, decode
from crownstream.schemas.events import Envelope
from crownstream.settings import get_settings
from crownstream.streams.dead_letter import PRODUCER_MAX_REQUEST_SIZE, dead_letter_headers, fit_dead_letter
from crownstream.streams.topics import ALL_TOPICS, DEAD_LETTER, TopicSpec, topic_for
from crownstream.tracing.propagation import processing_span

log = logging.getLogger(__name__)

dead_letter_topic = app.topic(
    DEAD_LETTER.full_name(), key_serializer="raw", value_serializer="raw", partitions=DEAD_LETTER.partition_count()
)


def input_topic(spec: TopicSpec) -> faust.TopicT:
    return app.topic(spec.full_name(), key_serializer="raw", value_serializer="raw", partitions=spec.partition_count())


def _infrastructure(exc: BaseException) -> bool:
    # A record too large to send is the record's problem; every other Kafka error is the cluster's.
    return isinstance(exc, KAFKA_FAILURES) and not isinstance(exc, MessageSizeTooLargeError)


def handler_error(exc: Exception, event_type: str | None = None, event_id: str | None = None) -> Rejection:
    """The DLQ reason of a handler's exception: its type and message, no traceback and no locals. A validation
    error is told by field and rule only (its input may be a user's contact, e.g. a Discord webhook URL), and
    whatever looks like a credential is masked as in the logs."""
    if isinstance(exc, PydanticValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(model)'}: {e['msg']}" for e in exc.errors()[:10])
        message = f"{exc.title}: {problems}"
    else:
        message = str(exc)
    reason = redact_text(cap_reason(f"{type(exc).__name__}: {message}", 1000))
    return Rejection("handler_error", reason, event_type, event_id)


async def guard(
    work: Callable[[], Awaitable[Any]], event_type: str | None = None, event_id: str | None = None, agent: str = ""
) -> Rejection | None:
    """Run one record's handling; a record-level failure becomes a ``Rejection``, never an exception."""
    try:
        await work()
    except RejectRecord as exc:
        return exc.rejection
    except Exception as exc:
        if _infrastructure(exc):
            raise
        # Where it failed, for whoever fixes the handler; one line, no traceback dump in the log.
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        log.error(
            "handler failed; record dead-lettered",
            extra={
                "agent": agent,
                "event_type": event_type,
                "event_id": event_id,
                "error": type(exc).__name__,
                "at": f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "?",
            },
        )
        return handler_error(exc, event_type, event_id)
    return None


@functools.cache
def _types_by_topic() -> dict[str, frozenset[str]]:
    """Which event types each topic carries, by full name (input topics and the standings outputs the
    notification agent reads); a topic not listed (internal ones) is not checked. Built on first use: the
    full names depend on the settings' topic prefix."""
    return {spec.full_name(): frozenset(spec.event_types) for spec in ALL_TOPICS if spec.event_types}


def wrong_topic(event: Envelope, topic: str) -> Rejection | None:
    expected = _types_by_topic().get(topic)
    if expected is None or event.type in expected:
        return None
    home = topic_for(event.type).full_name()
    return Rejection(
        "wrong_topic",
        f"{event.type} events belong on topic {home}, not {topic}; send them with the event producer "
        "(crownstream.streams.producer.EventProducer), which routes by type",
        event.type,
        event.event_id,
    )


async def process(
    value: bytes | None,
    topic: str,
    handle: Callable[[Envelope], Awaitable[Any]],
    *,
    max_bytes: int,
    agent: str = "",
    message: Any = None,
) -> Envelope | Rejection:
    """One input record, as every input agent handles it: decoded, checked against its topic, handled (under its
    trace span when ``message``, the record's Kafka message, is given). Returns the applied event, or the
    ``Rejection`` to dead-letter. Raises only Kafka's own errors."""
    result = decode(value, max_bytes=max_bytes)
    if isinstance(result, Rejection):
        return result
    rejection = wrong_topic(result, topic)
    if rejection is not None:
        return rejection
    EVENTS_IN.labels(topic, result.type).inc()
    event = result
    with processing_span(message, agent, event.event_id, event.type) if message is not None else nullcontext():
        rejection = await guard(lambda: handle(event), event.type, event.event_id, agent)
    return rejection if rejection is not None else event


async def process_events(
    stream: faust.StreamT,
    agent_name: str,
    handle: Callable[[Envelope], Awaitable[Any]],
    *,
    max_events: int | None = None,
) -> None:
    """The body of an input agent: records a partition's run at a time (crownstream/engine/batches.py: one hold of
    the commit gate per batch, so no commit splits an event's effects, its DLQ copy included; table writes
    compacted per key and written when the batch ends), each applied by ``handle`` or dead-lettered on its own.
    A dead-lettered record leaves no table write behind. ``max_events``: the largest batch (the
    ``batch_max_events`` setting by default)."""
    max_bytes = get_settings().max_event_bytes
    applied, dead_lettered = (
        AGENT_RECORDS.labels(agent_name, "applied"),
        AGENT_RECORDS.labels(agent_name, "dead_lettered"),
    )
    async for batch in gated_batches(app, stream, max_events or get_settings().batch_max_events):
        failed = 0
        try:
            for record in batch.events:
                with batch.processing(record) as outcome:
                    result = await process(
                        record.value,
                        record.message.topic,
                        handle,
                        max_bytes=max_bytes,
                        agent=agent_name,
                        message=record.message,
                    )
                    if isinstance(result, Rejection):
                        outcome.failed()
                        failed += 1
                        await send_to_dead_letter(record, result, agent_name)
        except Exception as exc:
            lose_on_kafka_failure(batch, exc, agent_name)
            continue
        count_batch(applied, dead_lettered, len(batch.events), failed)


async def process_internal(
    stream: faust.StreamT, agent_name: str, handle: Callable[[faust.EventT], Awaitable[Any]]
) -> None:
    """The body of an agent of an internal topic (records our own agents wrote), in batches as ``process_events``:
    a record its handler cannot read or apply is a bug, dead-lettered with the reason, so that it neither stops
    the agent nor vanishes."""
    applied, dead_lettered = (
        AGENT_RECORDS.labels(agent_name, "applied"),
        AGENT_RECORDS.labels(agent_name, "dead_lettered"),
    )
    async for batch in gated_batches(app, stream, get_settings().batch_max_events):
        failed = 0
        try:
            for record in batch.events:
                with batch.processing(record) as outcome, processing_span(record.message, agent_name):
                    rejection = await guard(lambda current=record: handle(current), agent=agent_name)
                    if rejection is not None:
                        outcome.failed()
                        failed += 1
                        await send_to_dead_letter(record, rejection, agent_name)
        except Exception as exc:
            lose_on_kafka_failure(batch, exc, agent_name)
            continue
        count_batch(applied, dead_lettered, len(batch.events), failed)


def lose_on_kafka_failure(batch: Batch, exc: Exception, agent_name: str) -> None:
    """Kafka failed under the batch (its producer fenced after this worker missed its session timeout, a send
    refused): the batch is lost here and read again after a rebalance (``Batch.lose``), and the agent goes on —
    raising would crash it, and a restarted agent has lost the record it was on. Anything else is a bug in this
    module (``guard`` turns every handler failure into a dead letter) and is raised."""
    if not _infrastructure(exc):
        raise exc
    AGENT_RECORDS.labels(agent_name, "requeued").inc(len(batch.events))
    batch.lose(exc)


def record_counters(agent_name: str) -> tuple[Any, Any]:
    return AGENT_RECORDS.labels(agent_name, "applied"), AGENT_RECORDS.labels(agent_name, "dead_lettered")


def count_batch(applied: Any, dead_lettered: Any, records: int, failed: int) -> None:
    """Per batch, not per record: a labelled counter's increment is a lock and an addition."""
    if records > failed:
        applied.inc(records - failed)
    if failed:
        dead_lettered.inc(failed)


def _max_request_size() -> int:
    try:
        return int(app.conf.producer_max_request_size)
    except (AttributeError, TypeError, ValueError):
        return PRODUCER_MAX_REQUEST_SIZE


async def send_to_dead_letter(record: faust.EventT, rejection: Rejection, agent_name: str) -> None:
    message = record.message
    copy = fit_dead_letter(
        record.key,
        record.value,
        dead_letter_headers(rejection, message.topic, message.partition, message.offset, agent_name),
        _max_request_size(),
    )
    log.warning(
        "dead-lettered record",
        extra={
            "code": rejection.code,
            "reason": cap_reason(rejection.reason, 500),
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "event_id": rejection.event_id,
            "truncated": len(copy.value) < len(record.value or b""),
        },
    )
    DEAD_LETTERS.labels(message.topic, rejection.code).inc()
    await dead_letter_topic.send(key=copy.key, value=copy.value, headers=copy.headers)
