"""Dispatch of a tournament event to its handlers: a handler that has applied the event before stops the ones
after it — the notices of a redelivered result are not fanned out again."""

from __future__ import annotations

from crownstream.agents.tournament_events import ALREADY_APPLIED, run_handlers


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


def test_notices_are_the_last_handler_of_every_tournament_event_type():
    # The skip above only protects notices that run after the standings handlers of the same type.
    import crownstream.agents.all  # noqa: F401  (registers every handler)
    from crownstream.agents.notifications import notify_event
    from crownstream.agents.tournament_events import HANDLERS

    notified = {event_type: handlers for event_type, handlers in HANDLERS.items() if notify_event in handlers}
    assert {"match.completed", "tournament.completed", "tournament.registered"} <= set(notified)
    for event_type, handlers in notified.items():
        assert handlers[-1] is notify_event, (event_type, [h.__name__ for h in handlers])
