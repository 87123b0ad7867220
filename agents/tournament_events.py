"""Agent: folds the tournament event stream (keyed by tournament) into per-tournament state.

Every record is decoded at the edge; invalid ones go to the dead-letter topic (agents/decoding.py), and so
does an event whose handler raises (``handler_error``): the agent goes on with the next record.
Valid events are dispatched by type to the handlers registered by the standings modules, then to the
notification handler (registered last: agents/notifications.py is imported after them, agents/all.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from crownstream.agents.decoding import input_topic, process_events
from crownstream.app import app
from crownstream.metrics import DUPLICATES, PROCESSING_SECONDS
from crownstream.schemas.events import Envelope
from crownstream.streams.topics import TOURNAMENT_EVENTS

log = logging.getLogger(__name__)

tournament_events_topic = input_topic(TOURNAMENT_EVENTS)

Handler = Callable[[Envelope], Awaitable[object]]
HANDLERS: dict[str, list[Handler]] = {}
# Called with the event when one of its handlers raised: modules drop what they cache in memory about it (a
# leaderboard that applied half the event), so it is rebuilt from the tables, which are the truth.
FORGET_ON_ERROR: list[Callable[[Envelope], None]] = []

# What a handler returns for a redelivered event it applied before (a producer's retry, a replay): the handlers
# after it do not run, so a duplicate result does not notify anyone again. The sinks' ledger would drop those
# notices by their dedup key, but only after the whole fan-out to every member of every team in the lobby.
ALREADY_APPLIED: Final = object()


def already_applied(event: Envelope) -> object:
    """Count ``event`` as a duplicate; the handler returns this to stop the handlers after it."""
    DUPLICATES.labels(event.type).inc()
    return ALREADY_APPLIED


async def run_handlers(handlers: list[Handler], event: Envelope) -> bool:
    """Run ``handlers`` in registration order; stop at the first that reports the event already applied.
    Returns whether every handler ran."""
    for handler in handlers:
        if await handler(event) is ALREADY_APPLIED:
            return False
    return True


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS.setdefault(event_type, []).append(fn)
        return fn

    return register


# Per tournament: how many events of each type were applied and the latest event's time. Cheap, and what an
# operator looks at first ("did the results of match 7 arrive?").
tournament_activity = app.Table("tournament-activity", default=None, partitions=TOURNAMENT_EVENTS.partition_count())


async def apply_tournament_event(event: Envelope) -> None:
    """One valid tournament event: its handlers, then the activity counts (only for an event that took effect)."""
    started = time.perf_counter()
    try:
        await run_handlers(HANDLERS.get(event.type, []), event)
    except Exception:
        for forget in FORGET_ON_ERROR:
            forget(event)
        raise
    activity = tournament_activity.get(event.tournament_id) or {"counts": {}, "last_occurred_at": None}
    counts = dict(activity["counts"])
    counts[event.type] = counts.get(event.type, 0) + 1
    tournament_activity[event.tournament_id] = {"counts": counts, "last_occurred_at": event.occurred_at.isoformat()}
    PROCESSING_SECONDS.labels(event.type).observe(time.perf_counter() - started)


@app.agent(tournament_events_topic, name="tournament-events")
async def fold_tournament_events(stream) -> None:
    await process_events(stream, "tournament-events", apply_tournament_event)
