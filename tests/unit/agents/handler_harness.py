"""The agents' real record path without a broker: ``decoding.process`` with every agent's real handler, the
Faust tables replaced by dicts and the sends captured (outputs encoded as on the wire, so an output that
could not be encoded fails here as it would in a worker).

Internal hops (notification-audiences, notification-users) are fed back through their agents' handlers, so a
record that passes the edge is followed through the whole notification fan-out to the delivery requests.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock

import crownstream.agents.all  # noqa: F401  (registers every handler)
from crownstream.agents import (
    audiences,
    decoding,
    notifications,
    notifications_common,
    notifications_users,
    tournament_events,
)
from crownstream.agents import series as series_agent
from crownstream.agents import standings as standings_agent
from crownstream.app import app
from crownstream.schemas.codec import Rejection, encode
from crownstream.schemas.events import Envelope
from crownstream.streams.partitioning import partition_for
from crownstream.streams.topics import (
    NOTIFICATION_CONTROL,
    PLATFORM_EVENTS,
    PREFERENCES,
    STANDINGS_EVENTS,
    TOURNAMENT_EVENTS,
)

MAX_BYTES = 512_000

# The input topics and the handler their agent applies to each valid event (agents/*.py).
HANDLES = {
    TOURNAMENT_EVENTS.full_name(): tournament_events.apply_tournament_event,
    PLATFORM_EVENTS.full_name(): notifications.notify_event,
    STANDINGS_EVENTS.full_name(): notifications.notify_event,
    NOTIFICATION_CONTROL.full_name(): notifications.apply_control,
    PREFERENCES.full_name(): notifications_users.apply_preferences,
}
INPUT_TOPIC_NAMES = sorted(HANDLES)


@dataclass
class Outcome:
    topic: str
    result: Envelope | Rejection

    @property
    def code(self) -> str | None:
        return self.result.code if isinstance(self.result, Rejection) else None


@dataclass
class Harness:
    """In-memory tables and captured sends; ``feed`` runs a record through its agent's path."""

    tables: dict[str, dict] = field(default_factory=dict)
    outputs: list[bytes] = field(default_factory=list)  # standings outputs, encoded, not yet fed on
    emitted: list[bytes] = field(default_factory=list)  # every standings output, encoded
    announced: list[bytes] = field(default_factory=list)  # the pipeline's own tournament events (round.paired …)
    # (topic, key, value, partition): the partition sent to, or the key's
    internal: list[tuple[str, bytes, bytes, int]] = field(default_factory=list)
    deliveries: list[tuple[str, bytes]] = field(default_factory=list)
    commit_requests: int = 0  # early commits asked for by broadcast steps (no consumer here to commit)
    outcomes: list[Outcome] = field(default_factory=list)
    _stack: ExitStack | None = None

    def __enter__(self) -> Harness:
        stack = self._stack = ExitStack()
        targets = {
            "tournament_activity": (tournament_events, "tournament_activity"),
            "tournaments": (standings_agent, "tournaments"),
            "stages": (standings_agent, "stages"),
            "br_results": (standings_agent, "br_results"),
            "br_match_index": (standings_agent, "br_match_index"),
            "series": (series_agent, "series_table"),
            "group_series": (series_agent, "group_series"),
            "stage_rounds": (series_agent, "stage_rounds"),
            "schedules": (notifications, "schedules"),
            "broadcasts": (notifications, "broadcasts"),
            "preferences": (notifications_users, "preferences"),
            "directory": (notifications_users, "directory"),
            "digests": (notifications_users, "digests"),
            "deferred": (notifications_users, "deferred"),
            "throttles": (notifications_users, "throttles"),
            "team_members": (audiences, "team_members"),
            "tournament_teams": (audiences, "tournament_teams"),
        }
        patched = {id(getattr(module, attr)) for module, attr in targets.values()}
        missed = [name for name, table in app.tables.items() if id(table) not in patched]
        assert not missed, f"the harness does not replace the app's tables {missed}: add them to its targets"
        for name, (module, attr) in targets.items():
            table = self.tables.setdefault(name, {})
            stack.enter_context(mock.patch.object(module, attr, table))
        # series.py reads the stages table through its own import of it.
        stack.enter_context(mock.patch.object(series_agent, "stages", self.tables["stages"]))
        stack.enter_context(mock.patch.object(standings_agent, "emit", self._emit))
        # Ranking changes are encoded by the agent itself and sent through emit_encoded (agents/standings.py).
        stack.enter_context(mock.patch.object(standings_agent, "emit_encoded", self._emit_encoded))
        stack.enter_context(mock.patch.object(series_agent, "emit", self._emit))
        stack.enter_context(mock.patch.object(notifications_common, "send", self._send))
        stack.enter_context(mock.patch.object(notifications_users, "send", self._send))
        stack.enter_context(mock.patch.object(notifications_users, "send_requests", self._send_requests))
        stack.enter_context(mock.patch.object(notifications_users, "_partition_users", self._partition_users))
        stack.enter_context(mock.patch.object(notifications_users, "request_commit", self._request_commit))
        # Caches of derived state (rebuilt from the tables on first use) start empty, as after a rebalance.
        stack.enter_context(mock.patch.object(standings_agent, "BOARDS", {}))
        stack.enter_context(mock.patch.object(series_agent, "GROUPS", {}))
        stack.enter_context(mock.patch.object(series_agent, "SWISS", {}))
        stack.enter_context(mock.patch.object(series_agent, "BRACKETS", {}))
        stack.enter_context(mock.patch.object(series_agent, "emit_tournament_events", self._announce))
        stack.enter_context(mock.patch.object(notifications_users, "MEMORY", notifications_users.UsersInMemory()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._stack is not None
        self._stack.close()

    # --- captured sends -------------------------------------------------------------------------------

    async def _emit(self, *events: Envelope) -> None:
        for e in events:
            value = encode(e)  # raises as a worker's send would on an unencodable output
            self.outputs.append(value)
            self.emitted.append(value)

    async def _announce(self, *events: Envelope) -> None:
        self.announced.extend(encode(e) for e in events)

    async def _emit_encoded(self, tournament_id: str, records: list[tuple[str, bytes]]) -> None:
        for _type, value in records:
            self.outputs.append(value)
            self.emitted.append(value)

    async def _send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        if partition is None:
            partition = partition_for(key.decode(), notifications_common.PARTITIONS[topic])
        self.internal.append((topic, key, value, partition))

    async def _send_requests(self, channel: str, partition: int, records: list[tuple[bytes, bytes]]) -> None:
        self.deliveries.extend((channel, value) for _key, value in records)

    def _request_commit(self) -> None:
        self.commit_requests += 1

    def _partition_users(self, partition: int, after: str | None, limit: int) -> list[str]:
        count = notifications_common.USER_PARTITIONS
        users = sorted(u for u in self.tables["directory"] if partition_for(u, count) == partition)
        return [u for u in users if after is None or u > after][:limit]

    # --- the record path ------------------------------------------------------------------------------

    async def feed(self, topic: str, value: bytes | None) -> Outcome:
        result = await decoding.process(value, topic, HANDLES[topic], max_bytes=MAX_BYTES, agent="harness")
        outcome = Outcome(topic, result)
        self.outcomes.append(outcome)
        return outcome

    async def drain(self, limit: int = 10_000) -> list[Rejection]:
        """Feed the captured internal records (and standings outputs) to their agents until none is left;
        returns the rejections of internal records (an internal record's handler never should fail)."""
        rejections: list[Rejection] = []
        handlers = {
            notifications_common.AUDIENCES: audiences.apply_audience_record,
            notifications_common.USERS: notifications_users.apply_user_record,
        }
        steps = 0
        while (self.internal or self.outputs) and steps < limit:
            steps += 1
            if self.outputs:
                await self.feed(STANDINGS_EVENTS.full_name(), self.outputs.pop(0))
                continue
            topic, key, value, partition = self.internal.pop(0)
            message = SimpleNamespace(topic=topic, partition=partition, offset=0)
            record = SimpleNamespace(key=key, value=value, message=message)
            rejection = await decoding.guard(lambda t=topic, r=record: handlers[t](r), agent="harness-internal")
            if rejection is not None:
                rejections.append(rejection)
        return rejections


def run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
