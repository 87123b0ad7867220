"""What a feed client sends, read into values or refused with a 4xx that says what to send instead (no I/O, so
unit-tested on its own): the body of a state change, and where a live stream resumes."""

from __future__ import annotations

from typing import Any

from crownstream.settings import Settings
from crownstream.sinks.feed_states import Selection
from crownstream.web.errors import HttpError
from crownstream.web.inputs import INT64_MAX, id_list, json_int, parse_int

SELECTION_BODY = '{"ids": [<item id>, …]}, {"up_to": <item id>} or {"all": true}'
_KEYS = frozenset({"ids", "up_to", "all"})


def selection(body: dict[str, Any], settings: Settings | None = None) -> Selection:
    """The items a state change names: exactly one of ``ids``, ``up_to`` or ``all: true``."""
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise HttpError(400, f"unknown field {unknown[0][:40]!r}; the body must be {SELECTION_BODY}")
    named = [key for key in ("ids", "up_to", "all") if key in body]
    if len(named) != 1:
        raise HttpError(400, f"name the items with exactly one of ids, up_to or all: the body must be {SELECTION_BODY}")
    if "ids" in body:
        return Selection(ids=tuple(id_list(body["ids"], "ids", settings)))
    if "up_to" in body:
        return Selection(up_to=json_int(body["up_to"], "up_to", 0, INT64_MAX))
    if body["all"] is not True:
        raise HttpError(400, f"all must be true (to name some items instead, send ids or up_to): {SELECTION_BODY}")
    return Selection()


def resume_after(last_event_id: str | None, after: str | None) -> int | None:
    """Where a live stream resumes: after the item id of the ``Last-Event-ID`` header (what a reconnecting
    EventSource sends) or else of the ``after`` query parameter (the newest id of a list the client just loaded);
    None: from now on."""
    if last_event_id is not None and last_event_id.strip() != "":
        return parse_int(last_event_id.strip(), "the Last-Event-ID header (the id of the last feed item received)", 0)
    if after is not None and after != "":
        return parse_int(after, "after", 0)
    return None
