"""``crownstream trace EVENT_ID``: everything one input event caused, read back from the topics and the ledger.

No tracing backend is needed: every record the pipeline writes carries the ``traceparent`` of the processing that
wrote it, and the span a record was processed under is derived from that header and the record's place
(crownstream/tracing/context.py), so each record is linked to the one that caused it by recomputing it. The event's
trace is found from its input record (or derived from its id when the record is past retention or the window).

Per hop: the record's topic, partition, offset, time, what it says; per delivery request: its dedup key and the
ledger's state (sent, retrying, dead-lettered, with its attempts); per notified user and channel that got no request:
why, resolved again from the user's preferences as of the notify record's time (opted out, unsubscribed, no
address, not selected, held for a digest, deferred by quiet hours); records of the trace that were dead-lettered.
Reads only: no consumer group, nothing committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from crownstream.notifications.catalog import CATALOG
from crownstream.notifications.preferences import DEFAULTS, InvalidPreferences, Preferences, parse_preferences
from crownstream.notifications.routing import Skip, resolve
from crownstream.schemas.codec import Rejection, decode
from crownstream.schemas.deliveries import InvalidDelivery, decode_delivery
from crownstream.schemas.events import PreferencesUpdated
from crownstream.settings import Settings, get_settings
from crownstream.streams.dead_letter import DeadLetter
from crownstream.streams.reading import read_topics
from crownstream.streams.topics import (
    ALL_TOPICS,
    DEAD_LETTER,
    DELIVERIES,
    DELIVERY_DEAD_LETTER,
    NOTIFICATION_AUDIENCES,
    NOTIFICATION_CONTROL,
    NOTIFICATION_USERS,
    PLATFORM_EVENTS,
    PREFERENCES,
    STANDINGS_EVENTS,
    TOURNAMENT_EVENTS,
)
from crownstream.tracing.context import TraceContext, for_event, parse, processing
from crownstream.tracing.propagation import header_value

SKIP_REASONS = {
    "opted_out": "the user opted out of this channel",
    "unsubscribed": "the user unsubscribed from this channel",
    "no_address": "no address for this channel in the user's contact",
    "not_selected": "not among the channels chosen for this notification type",
}


@dataclass
class Hop:
    """One record of the trace."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    what: str
    span_id: str | None  # the span that wrote it (its header)
    processed_span_id: str | None  # the span its consumer ran under (recomputed)
    parent: int | None = None  # index of the hop whose processing wrote it
    delivery: dict[str, Any] | None = None  # delivery topics: the request and its ledger rows


@dataclass
class Suppressed:
    user_id: str
    channel: str
    notification_type: str
    reason: str
    detail: str
    notify_hop: int


@dataclass
class TraceReport:
    event_id: str
    trace_id: str
    found_input: bool
    hops: list[Hop] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    ledger_error: str | None = None  # the ledger could not be read: deliveries are shown without their state
    short_names: dict[str, str] = field(default_factory=dict)  # topic -> its name without prefix and app id

    def deliveries(self) -> list[Hop]:
        return [hop for hop in self.hops if hop.delivery is not None]

    def for_user(self, user_id: str) -> TraceReport:
        """Only what concerns ``user_id``: their deliveries and suppressions, and the hops that led to them."""
        keep: set[int] = set()

        def with_ancestors(index: int | None) -> None:
            while index is not None and index not in keep:
                keep.add(index)
                index = self.hops[index].parent

        for index, hop in enumerate(self.hops):
            if hop.delivery is not None and hop.delivery["user_id"] == user_id:
                with_ancestors(index)
        suppressed = [s for s in self.suppressed if s.user_id == user_id]
        for s in suppressed:
            with_ancestors(s.notify_hop)
        if self.hops:
            keep.add(0)  # the event itself, even when nothing reached the user
        order = sorted(keep)
        renumber = {old: new for new, old in enumerate(order)}
        hops = []
        for old in order:
            hop = Hop(**{**self.hops[old].__dict__})
            hop.parent = renumber.get(hop.parent) if hop.parent is not None else None
            hops.append(hop)
        return TraceReport(
            self.event_id,
            self.trace_id,
            self.found_input,
            hops,
            [Suppressed(**{**s.__dict__, "notify_hop": renumber[s.notify_hop]}) for s in suppressed],
            self.dead_letters,
            self.ledger_error,
            self.short_names,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "trace_id": self.trace_id,
            "found_input": self.found_input,
            "hops": [hop.__dict__ for hop in self.hops],
            "suppressed": [s.__dict__ for s in self.suppressed],
            "dead_letters": self.dead_letters,
            "ledger_error": self.ledger_error,
        }


def _record_context(record: Any, event_id: str | None = None) -> TraceContext | None:
    ctx = parse(header_value(record.headers))
    if ctx is None and event_id is not None:
        ctx = for_event(event_id)
    return ctx


def _key(record: Any) -> str | None:
    return record.key.decode(errors="replace") if record.key is not None else None


def _hop(
    record: Any, what: str, ctx: TraceContext | None, arrived: TraceContext | None, event_id: str | None = None
) -> Hop:
    """``ctx``: the context the record was processed under (None: not processed by an agent, or untraced)."""
    processed = processing(ctx, record.topic, record.partition, record.key, event_id) if ctx is not None else None
    return Hop(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        _key(record),
        what,
        arrived.span_id if arrived is not None else None,
        processed.span_id if processed is not None else None,
    )


def describe_event(data: Any) -> str:
    parts = [str(data.type)]
    for name in ("tournament_id", "match_id", "team_id", "user_id", "old_rank", "new_rank"):
        value = getattr(data, name, None)
        if value is not None:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def describe_internal(data: dict[str, Any]) -> str:
    op = data.get("op")
    notice = data.get("notice") or {}
    users = data.get("users") or ([data["user"]] if "user" in data else [])
    if op == "notify":
        return f"notify {notice.get('type')} to {len(users)} user(s): {', '.join(users[:10])}"
    if op == "resolve_team":
        teams = data.get("teams") or [data.get("team")]
        return f"resolve {notice.get('type')} for team(s) {', '.join(map(str, teams))}"
    if op == "resolve_tournament":
        return f"resolve {notice.get('type')} for tournament {data.get('tournament')}"
    if op == "broadcast_step":
        return f"broadcast {notice.get('type')} step after {data.get('after')!r}"
    return str(op)


class _Tracer:
    def __init__(self, event_id: str, settings: Settings, since_ms: int | None) -> None:
        self.event_id = event_id
        self.settings = settings
        self.since_ms = since_ms
        self.report = TraceReport(event_id, for_event(event_id).trace_id, False)
        self.by_processed_span: dict[str, int] = {}
        self.sources: set[bytes] = {event_id.encode()}  # event ids of the trace: the event and what it derived
        self.notify_data: dict[int, dict[str, Any]] = {}  # notify hops: their records

    def add(self, hop: Hop) -> int:
        parent = self.by_processed_span.get(hop.span_id) if hop.span_id else None
        hop.parent = parent
        self.report.hops.append(hop)
        index = len(self.report.hops) - 1
        if hop.processed_span_id is not None:
            self.by_processed_span.setdefault(hop.processed_span_id, index)
        return index

    def in_trace(self, record: Any, arrived: TraceContext | None) -> bool:
        """``arrived``: the record's trace header, parsed."""
        if arrived is not None:
            return arrived.trace_id == self.report.trace_id
        # Written without a trace header (a digest or a quiet-hours release, from a timer; records written before
        # trace headers existed): part of the trace if it names one of its events.
        value = record.value or b""
        return any(source in value for source in self.sources)

    async def find_input(self) -> None:
        topics = [TOURNAMENT_EVENTS, PLATFORM_EVENTS, NOTIFICATION_CONTROL]
        needle = self.event_id.encode()
        async with aclosing(read_topics(topics, self.since_ms, self.settings)) as records:
            async for record in records:
                if header_value(record.headers, "event_id") not in (None, needle) or needle not in (
                    record.value or b""
                ):
                    continue
                decoded = decode(record.value)
                if isinstance(decoded, Rejection) or decoded.event_id != self.event_id:
                    continue
                ctx = _record_context(record, self.event_id)
                assert ctx is not None
                self.report.trace_id = ctx.trace_id
                self.report.found_input = True
                arrived = parse(header_value(record.headers))
                self.add(_hop(record, describe_event(decoded), ctx, arrived, decoded.event_id))
                return

    async def follow(self) -> list[int]:
        """The records of the trace on the standings and internal topics, in hop order; returns the notify hops."""
        notify_hops: list[int] = []
        for spec in (STANDINGS_EVENTS, NOTIFICATION_AUDIENCES, NOTIFICATION_USERS):
            async for record in read_topics([spec], self.since_ms, self.settings):
                arrived = parse(header_value(record.headers))
                if not self.in_trace(record, arrived):
                    continue
                if spec is STANDINGS_EVENTS:
                    decoded = decode(record.value)
                    if isinstance(decoded, Rejection):
                        continue
                    self.sources.add(decoded.event_id.encode())
                    self.add(_hop(record, describe_event(decoded), arrived, arrived, decoded.event_id))
                    continue
                try:
                    data = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    continue
                index = self.add(_hop(record, describe_internal(data), arrived, arrived))
                if data.get("op") == "notify":
                    notify_hops.append(index)
                    self.notify_data[index] = data
        return notify_hops

    async def deliveries(self) -> None:
        async for record in read_topics(DELIVERIES.values(), self.since_ms, self.settings):
            arrived = parse(header_value(record.headers))
            if not self.in_trace(record, arrived):
                continue
            try:
                request = decode_delivery(record.value)
            except InvalidDelivery:
                continue
            names_source = request.source_event_id.encode() in self.sources or any(
                item.source_event_id.encode() in self.sources for item in request.items
            )
            if arrived is None and not names_source:
                continue
            hop = _hop(record, f"{request.channel} {request.notification_type} to {request.user_id}", None, arrived)
            hop.delivery = {
                "dedup_key": request.dedup_key,
                "channel": request.channel,
                "user_id": request.user_id,
                "notification_type": request.notification_type,
                "kind": request.kind,
                "source_event_id": request.source_event_id,
                "ledger": [],
            }
            self.add(hop)

    async def ledger(self) -> None:
        hops = self.report.deliveries()
        if not hops:
            return
        from crownstream.sinks.db import create_engine
        from crownstream.sinks.tables import deliveries

        engine = create_engine(self.settings)
        keys = sorted({hop.delivery["dedup_key"] for hop in hops if hop.delivery})
        columns = (
            deliveries.c.dedup_key,
            deliveries.c.target,
            deliveries.c.state,
            deliveries.c.attempt_count,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.next_attempt_at,
            deliveries.c.sent_at,
        )
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(select(*columns).where(deliveries.c.dedup_key.in_(keys)))).all()
        except (OSError, SQLAlchemyError) as exc:
            self.report.ledger_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            return
        finally:
            await engine.dispose()
        by_key: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_key.setdefault(row.dedup_key, []).append(
                {
                    "target": row.target,
                    "state": row.state,
                    "attempts": row.attempt_count,
                    "last_error": row.last_error,
                    "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
                    "sent_at": row.sent_at.isoformat() if row.sent_at else None,
                    "history": row.attempts,
                }
            )
        for hop in hops:
            assert hop.delivery is not None
            hop.delivery["ledger"] = by_key.get(hop.delivery["dedup_key"], [])

    async def suppressed(self, notify_hops: list[int]) -> None:
        """Why each notified user got no request on a channel, from their preferences as of the notify record."""
        if not notify_hops:
            return
        wanted: set[str] = set()
        for index in notify_hops:
            data = self.notify_data[index]
            wanted.update(data.get("users") or ([data["user"]] if "user" in data else []))
        history = await self._preferences_history(wanted)
        requested = {
            (hop.delivery["user_id"], hop.delivery["channel"], hop.delivery["source_event_id"])
            for hop in self.report.deliveries()
            if hop.delivery is not None
        }
        for index in notify_hops:
            data = self.notify_data[index]
            notice = data.get("notice") or {}
            kind = CATALOG.get(notice.get("type", ""))
            if kind is None:
                continue
            at_ms = self.report.hops[index].timestamp_ms
            now = datetime.fromtimestamp(at_ms / 1000, UTC)
            for user_id in data.get("users") or ([data["user"]] if "user" in data else []):
                prefs, as_of = _preferences_at(history.get(user_id, []), at_ms)
                resolution = resolve(kind, prefs, now)
                when = f"preferences as of {as_of}" if as_of else "default preferences (the user never set any)"
                for channel, route in sorted(resolution.by_channel().items()):
                    if (user_id, channel, notice.get("source")) in requested:
                        continue
                    reason: str
                    if isinstance(route, Skip):
                        if route.reason == "not_selected":
                            continue  # a channel nobody asked for is not a suppression
                        reason, detail = route.reason, f"{SKIP_REASONS[route.reason]} ({when})"
                    elif route.mode == "digest":
                        reason, detail = "digest", f"held for the user's digest ({when})"
                    elif route.mode == "deferred":
                        reason = "quiet_hours"
                        detail = f"deferred by quiet hours until {route.release_at} ({when})"
                    else:
                        reason, detail = "not_found", "a request was due but none was found on the delivery topic"
                    self.report.suppressed.append(Suppressed(user_id, channel, kind.name, reason, detail, index))

    async def _preferences_history(self, users: set[str]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
        history: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        keys = {user.encode() for user in users}
        # The whole compacted topic, not the window: a user's preferences may be older than the event.
        async for record in read_topics([PREFERENCES], None, self.settings):
            if record.key not in keys:
                continue
            decoded = decode(record.value)
            if not isinstance(decoded, PreferencesUpdated):
                continue
            history.setdefault(decoded.user_id, []).append((record.timestamp, decoded.preferences))
        return history

    async def dead_lettered(self) -> None:
        places = {(hop.topic, hop.partition, hop.offset) for hop in self.report.hops}
        async for record in read_topics([DEAD_LETTER, DELIVERY_DEAD_LETTER], self.since_ms, self.settings):
            letter = DeadLetter.from_record(record.offset, record.key, record.value, record.headers)
            mentions = (letter.source_topic, letter.source_partition, letter.source_offset) in places
            if mentions or (not self.report.found_input and self.event_id.encode() in (record.value or b"")):
                self.report.dead_letters.append(
                    {
                        "topic": record.topic,
                        "offset": record.offset,
                        "code": letter.code,
                        "reason": letter.reason,
                        "source": f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}",
                        "agent": letter.agent,
                    }
                )


def _preferences_at(history: list[tuple[int, dict[str, Any]]], at_ms: int) -> tuple[Preferences, str | None]:
    """The user's preferences in force at ``at_ms`` (the last update at or before it), and when they were set."""
    chosen: tuple[int, dict[str, Any]] | None = None
    for timestamp, document in history:
        if timestamp <= at_ms:
            chosen = (timestamp, document)
    if chosen is None:
        return DEFAULTS, None
    try:
        prefs = parse_preferences(chosen[1])
    except InvalidPreferences:
        return DEFAULTS, None  # the agent dead-lettered it and kept the previous ones
    return prefs, datetime.fromtimestamp(chosen[0] / 1000, UTC).isoformat(timespec="milliseconds")


async def trace_event(event_id: str, since_s: float | None = 86_400, settings: Settings | None = None) -> TraceReport:
    """The trace of ``event_id`` over records written in the last ``since_s`` seconds (None: all retained)."""
    settings = settings or get_settings()
    since_ms = int((time.time() - since_s) * 1000) if since_s is not None else None
    tracer = _Tracer(event_id, settings, since_ms)
    tracer.report.short_names = {spec.full_name(settings): spec.name for spec in ALL_TOPICS}
    await tracer.find_input()
    notify_hops = await tracer.follow()
    await tracer.deliveries()
    await tracer.ledger()
    await tracer.suppressed(notify_hops)
    await tracer.dead_lettered()
    return tracer.report


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ledger_line(rows: Iterable[dict[str, Any]]) -> str:
    parts = []
    for row in rows:
        target = f" endpoint {row['target']}" if row["target"] else ""
        if row["state"] == "sent":
            parts.append(f"sent{target} at {row['sent_at']} after {row['attempts']} attempt(s)")
        elif row["state"] == "dead":
            parts.append(f"dead-lettered{target} after {row['attempts']} attempt(s): {row['last_error']}")
        elif row["state"] == "failed":
            parts.append(
                f"retrying{target}: {row['attempts']} attempt(s), next at {row['next_attempt_at']}, "
                f"last error {row['last_error']}"
            )
        else:
            parts.append(f"{row['state']}{target} ({row['attempts']} attempt(s))")
    return "; ".join(parts) if parts else "no ledger row (not accepted yet, or no webhook endpoint wants it)"


def render(report: TraceReport) -> str:
    """The report as indented text: each record under the one whose processing wrote it."""
    lines = [f"trace {report.trace_id} of event {report.event_id}"]
    if not report.found_input:
        lines.append("  (its input record was not found in the window; records of its derived trace follow)")
    children: dict[int | None, list[int]] = {}
    for index, hop in enumerate(report.hops):
        children.setdefault(hop.parent, []).append(index)
    start = report.hops[0].timestamp_ms if report.hops else 0
    suppressed_by_hop: dict[int, list[Suppressed]] = {}
    for s in report.suppressed:
        suppressed_by_hop.setdefault(s.notify_hop, []).append(s)

    def walk(index: int, depth: int) -> None:
        hop = report.hops[index]
        pad = "  " * depth
        offset = f"+{(hop.timestamp_ms - start) / 1000:.3f}s" if index else _time(hop.timestamp_ms)
        topic = report.short_names.get(hop.topic, hop.topic)
        lines.append(f"{pad}{topic}[{hop.partition}]@{hop.offset}  {offset}  {hop.what}")
        if hop.delivery is not None:
            state = (report.ledger_error and "ledger not read") or _ledger_line(hop.delivery["ledger"])
            lines.append(f"{pad}  dedup key {hop.delivery['dedup_key']}: {state}")
        for s in suppressed_by_hop.get(index, []):
            verdict = "held" if s.reason in ("digest", "quiet_hours") else "suppressed"
            lines.append(f"{pad}  {s.channel} to {s.user_id}: {verdict}, {s.reason}: {s.detail}")
        for child in children.get(index, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 1)
    if report.ledger_error:
        lines.append(f"  the ledger could not be read ({report.ledger_error}): check CROWNSTREAM_DATABASE_URL")
    for letter in report.dead_letters:
        lines.append(f"  dead-lettered {letter['source']} [{letter['code']}] by {letter['agent']}: {letter['reason']}")
    counts: dict[str, int] = {}
    for hop in report.deliveries():
        assert hop.delivery is not None
        states = [row["state"] for row in hop.delivery["ledger"]] or [
            "not in the ledger" if not report.ledger_error else "unknown"
        ]
        for state in states:
            counts[state] = counts.get(state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
    lines.append(
        f"  {len(report.hops)} records, {len(report.deliveries())} delivery requests ({summary}), "
        f"{len(report.suppressed)} held or suppressed by preference, {len(report.dead_letters)} dead-lettered"
    )
    return "\n".join(lines)
