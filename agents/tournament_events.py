"""Agent: folds the tournament event stream (keyed by tournament) into per-tournament state.

Every record is decoded at the edge; invalid ones go to the dead-letter topic (agents/decoding.py), and so
does an event whose handler raises (``handler_error``): the agent goes on with the next record.
Valid events are dispatched by type to their handlers in the order of their ``Stage`` — standings, then series,
then notifications — whatever order the modules registering them were imported in. ``handler_table()`` is the
table (event type -> its handlers, in the order they run); tests/unit/agents/test_handler_dispatch.py holds it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from enum import IntEnum
from typing import Final

from crownstream.agents.decoding import input_topic, process_events
from crownstream.app import app
from crownstream.metrics import DUPLICATES, PROCESSING_SECONDS
from crownstream.schemas.events import Envelope
from crownstream.streams.topics import TOURNAMENT_EVENTS

log = logging.getLogger(__name__)

tournament_events_topic = input_topic(TOURNAMENT_EVENTS)

Handler = Callable[[Envelope], Awaitable[object]]


class Stage(IntEnum):
    """Where a handler runs among the handlers of one event type: in increasing order.

    The series handlers read the stages the standings handlers keep (a series stage is configured there first),
    and the notices run last so that a handler that finds the event already applied stops them (see
    ``ALREADY_APPLIED``): a redelivered result does not notify anyone again."""

    STANDINGS = 1
    SERIES = 2
    NOTIFY = 3


# event type -> stage -> its handler: at most one per stage, so the order of an event's handlers is the order
# of their stages and never the order their modules happened to be imported in.
HANDLERS: dict[str, dict[Stage, Handler]] = {}
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


async def run_handlers(handlers: Iterable[Handler], event: Envelope) -> bool:
    """Run ``handlers`` in their order; stop at the first that reports the event already applied.
    Returns whether every handler ran."""
    for handler in handlers:
        if await handler(event) is ALREADY_APPLIED:
            return False
    return True


def handles(*event_types: str, stage: Stage) -> Callable[[Handler], Handler]:
    """Register the decorated function as the ``stage`` handler of each of ``event_types``."""

    def register(fn: Handler) -> Handler:
        for event_type in event_types:
            by_stage = HANDLERS.setdefault(event_type, {})
            taken = by_stage.get(stage)
            if taken is not None and taken is not fn:
                raise ValueError(
                    f"{event_type!r} already has a {stage.name} handler ({taken.__module__}.{taken.__qualname__}); "
                    f"{fn.__module__}.{fn.__qualname__} needs a stage of its own: add one to Stage, in the place "
                    "it must run"
                )
            by_stage[stage] = fn
        return fn

    return register


def handlers_for(event_type: str) -> tuple[Handler, ...]:
    """The handlers of ``event_type`` in the order they run (by stage)."""
    by_stage = HANDLERS.get(event_type, {})
    return tuple(by_stage[stage] for stage in sorted(by_stage))


def handler_table() -> dict[str, tuple[tuple[Stage, str], ...]]:
    """The dispatch table, event type -> (stage, handler's qualified name) in the order they run; once every
    agent module is imported (``crownstream.agents.all``)::

        stage.configured       STANDINGS standings.on_stage_configured, SERIES series.on_stage_configured
        tournament.registered  STANDINGS standings.on_registered, NOTIFY notifications.notify_event
        match.completed        STANDINGS standings.on_match_completed, SERIES series.on_series_game,
                               NOTIFY notifications.notify_event
        result.overridden      STANDINGS standings.on_override, SERIES series.on_series_override
        match.forfeited        STANDINGS standings.on_forfeited, SERIES series.on_series_forfeit
        team.disqualified      STANDINGS standings.on_disqualified
        tournament.completed   STANDINGS standings.on_completed, NOTIFY notifications.notify_event
        round.paired           SERIES series.on_round_paired, NOTIFY notifications.notify_event
        match.scheduled, match.started, match.disputed, bracket.ready: NOTIFY notifications.notify_event
    """
    return {
        event_type: tuple(
            (stage, f"{HANDLERS[event_type][stage].__module__}.{HANDLERS[event_type][stage].__qualname__}")
            for stage in sorted(HANDLERS[event_type])
        )
        for event_type in sorted(HANDLERS)
    }


# Per tournament: how many events of each type were applied and the latest event's time. Cheap, and what an
# operator looks at first ("did the results of match 7 arrive?").
tournament_activity = app.Table("tournament-activity", default=None, partitions=TOURNAMENT_EVENTS.partition_count())


async def apply_tournament_event(event: Envelope) -> None:
    """One valid tournament event: its handlers, then the activity counts (only for an event that took effect)."""
    started = time.perf_counter()
    try:
        await run_handlers(handlers_for(event.type), event)
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
