"""Dispatch of a tournament event to its handlers: in the order of their stage (standings, series, notices),
whatever order their modules were imported in; a handler that has applied the event before stops the ones after
it — the notices of a redelivered result are not fanned out again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crownstream.agents import tournament_events
from crownstream.agents.tournament_events import (
    ALREADY_APPLIED,
    Stage,
    handler_table,
    handlers_for,
    handles,
    run_handlers,
)


async def test_every_handler_runs_in_order_for_a_new_event():
    ran: list[str] = []

    async def standings(event):
        ran.append("standings")

    async def notices(event):
        ran.append("notices")

    assert await run_handlers([standings, notices], object()) is True
    assert ran == ["standings", "notices"]


async def test_an_event_applied_before_stops_the_handlers_after_it():
    ran: list[str] = []

    async def standings(event):
        ran.append("standings")
        return ALREADY_APPLIED

    async def notices(event):
        ran.append("notices")

    assert await run_handlers([standings, notices], object()) is False
    assert ran == ["standings"]


async def test_only_the_marker_stops_dispatch():
    ran: list[str] = []

    async def returns_a_value(event):
        ran.append("first")
        return False  # any other value, falsy or not, is not "already applied"

    async def notices(event):
        ran.append("notices")

    assert await run_handlers([returns_a_value, notices], object()) is True
    assert ran == ["first", "notices"]


# The dispatch table once every agent module is imported: event type -> its handlers, in the order they run.
TABLE = {
    "bracket.ready": [("NOTIFY", "notifications.notify_event")],
    "round.paired": [("SERIES", "series.on_round_paired"), ("NOTIFY", "notifications.notify_event")],
    "match.completed": [
        ("STANDINGS", "standings.on_match_completed"),
        ("SERIES", "series.on_series_game"),
        ("NOTIFY", "notifications.notify_event"),
    ],
    "match.disputed": [("NOTIFY", "notifications.notify_event")],
    "match.forfeited": [("STANDINGS", "standings.on_forfeited"), ("SERIES", "series.on_series_forfeit")],
    "match.scheduled": [("NOTIFY", "notifications.notify_event")],
    "match.started": [("NOTIFY", "notifications.notify_event")],
    "result.overridden": [("STANDINGS", "standings.on_override"), ("SERIES", "series.on_series_override")],
    "stage.configured": [("STANDINGS", "standings.on_stage_configured"), ("SERIES", "series.on_stage_configured")],
    "team.disqualified": [("STANDINGS", "standings.on_disqualified")],
    "tournament.completed": [("STANDINGS", "standings.on_completed"), ("NOTIFY", "notifications.notify_event")],
    "tournament.registered": [("STANDINGS", "standings.on_registered"), ("NOTIFY", "notifications.notify_event")],
}

# Prints the table as TABLE spells it, after importing the agent modules in the order given on the command line.
PRINT_TABLE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module("crownstream.agents." + name)
from crownstream.agents.tournament_events import handler_table
table = handler_table().items()
print(json.dumps({t: [[s.name, n.removeprefix("crownstream.agents.")] for s, n in h] for t, h in table}))
"""


def table_after_importing(*modules: str) -> dict[str, list[list[str]]]:
    # A fresh interpreter: the modules of this one were imported (and registered) long ago.
    done = subprocess.run(
        [sys.executable, "-c", PRINT_TABLE, *modules], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_the_table_of_every_event_type():
    import crownstream.agents.all  # noqa: F401  (registers every handler)

    table = {t: [(s.name, n.removeprefix("crownstream.agents.")) for s, n in h] for t, h in handler_table().items()}
    assert table == TABLE
    for event_type, rows in TABLE.items():
        assert [
            f"{h.__module__}.{h.__qualname__}".removeprefix("crownstream.agents.") for h in handlers_for(event_type)
        ] == [name for _, name in rows]


def test_the_import_order_of_the_agent_modules_does_not_change_the_table():
    # Notifications first: before the table, notify_event then ran first for match.completed and the two other
    # types it shares with standings, and a redelivered result notified everyone again.
    expected = {t: [list(row) for row in rows] for t, rows in TABLE.items()}
    assert table_after_importing("notifications", "series", "standings") == expected
    assert table_after_importing("all") == expected


def test_registration_order_does_not_change_the_dispatch_order(monkeypatch):
    monkeypatch.setattr(tournament_events, "HANDLERS", {})

    async def notices(event): ...

    async def series(event): ...

    async def standings(event): ...

    handles("x.happened", stage=Stage.NOTIFY)(notices)
    handles("x.happened", stage=Stage.SERIES)(series)
    handles("x.happened", stage=Stage.STANDINGS)(standings)
    assert handlers_for("x.happened") == (standings, series, notices)
    assert handlers_for("y.happened") == ()


def test_two_handlers_of_one_stage_for_one_type_are_refused(monkeypatch):
    # Their order would again be the order of the imports.
    monkeypatch.setattr(tournament_events, "HANDLERS", {})

    async def first(event): ...

    async def second(event): ...

    handles("x.happened", stage=Stage.SERIES)(first)
    handles("x.happened", stage=Stage.SERIES)(first)  # the same function again (a module read twice) is harmless
    refused = r"'x.happened' already has a SERIES handler .*first\); .*second needs a stage"
    with pytest.raises(ValueError, match=refused):
        handles("x.happened", stage=Stage.SERIES)(second)
    assert handlers_for("x.happened") == (first,)
