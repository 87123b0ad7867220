"""Throttles: at most ``limit`` notices of one type per user and tournament within any ``window`` (the catalog's
``Throttle``); the rest are folded, not lost. The next one that goes out carries them ("And 7 more ranking changes
since …"); if none comes, the newest folded one goes out on its own once the window has room again, carrying the
others. Pure: state in, decision and state out; the agent keeps one ``ThrottleState`` per user and key.

Why these rules:
- **Sliding window over event time.** A notice goes out if fewer than ``limit`` went out in the ``window`` before its
  event time, so no window of that length ever holds more than ``limit`` (a fixed window lets 2 x limit through
  across its boundary). The time is the notice's own (``created_at``, the source event's ``occurred_at``), never the
  clock: a replay decides the same. The key's time never runs back (the latest time seen is used when a notice is
  older), so a late event cannot reopen a window that others already filled.
- **Per (type, tournament).** The records of one user's ranking changes in one tournament all travel one path
  (the tournament's partition, the team's, the user's), so a replay meets them in the same order and decides the
  same; two tournaments' streams reach a user through different partitions, interleaved differently by each run.
  It also keeps the carried line true: "7 more ranking changes" are this tournament's.
- **Across channels.** One decision per notice and user: in-app, email and the rest tell the same story (a folded
  notice is folded everywhere; the one that carries the count carries it everywhere). Digest routes are not
  throttled: a digest already summarises, and holds every item.
- **The release when nothing follows** waits, on the notification clock, at least as long as the window still had to
  run at the last fold, plus the throttle's ``grace`` for a next notice already on its way. In real time that is the
  window's end; a backlog or a replay, whose events are long past, still waits a window instead of releasing in the
  middle of a burst it has not finished reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from crownstream.notifications.catalog import CATALOG, Notice, Throttle
from crownstream.standings.serialization import from_plain, to_plain

#: Source event ids a fold keeps (for the request's data); the count goes on past them.
FOLDED_IDS_MAX = 20
#: A user's other keys idle this long past their window are forgotten (``forget_idle``).
FORGET_AFTER = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Folded:
    """Notices held back by a throttle: how many, since when (event time), and the first ones' source ids."""

    count: int
    since: datetime
    source_event_ids: tuple[str, ...] = ()

    def plus(self, source_event_id: str) -> Folded:
        ids = self.source_event_ids
        if len(ids) < FOLDED_IDS_MAX:
            ids = (*ids, source_event_id)
        return replace(self, count=self.count + 1, source_event_ids=ids)

    def to_data(self) -> dict[str, Any]:
        """What a request carries under ``data["folded"]``."""
        return {"count": self.count, "since": self.since.isoformat(), "source_event_ids": list(self.source_event_ids)}


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """One user's throttle of one key. ``sent``: event times of the sends still inside the window, oldest first.
    ``held``: the newest folded notice (what a release sends). ``release_after``: on the notification clock, when
    the timer may release it."""

    sent: tuple[datetime, ...] = ()
    latest: datetime | None = None
    folded: Folded | None = None
    held: Notice | None = None
    release_after: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ThrottleState:
        return from_plain(cls, d, what="a stored throttle state")

    def idle(self, throttle: Throttle, at: datetime) -> bool:
        """Nothing held and no send inside the window before ``at``: the state can be forgotten."""
        return self.held is None and all(s <= at - throttle.window for s in self.sent)


@dataclass(frozen=True, slots=True)
class Send:
    """Send the notice now; ``carry``: the folded notices it tells of (None: nothing was folded)."""

    carry: Folded | None = None


@dataclass(frozen=True, slots=True)
class Fold:
    """Hold the notice back: counted into the next one that goes out."""


def key_of(notice: Notice) -> str:
    return f"{notice.notification_type}|{notice.tournament_id or ''}"


def type_of(key: str) -> str:
    return key.partition("|")[0]


def forget_idle(states: Mapping[str, Mapping[str, Any]], keep: str, at: datetime) -> dict[str, Mapping[str, Any]]:
    """A user's stored states without the keys (other than ``keep``) idle for ``FORGET_AFTER`` past their window
    at ``at``, so the value stays small. The margin is that long because another key's notices reach the user by
    other partitions: only one of them arriving over a week behind ``at`` could still have needed what is dropped.
    A key whose type has no throttle any more is kept while it holds a notice (the release sends it)."""
    kept: dict[str, Mapping[str, Any]] = {}
    for key, stored in states.items():
        throttle = CATALOG[type_of(key)].throttle if type_of(key) in CATALOG else None
        state = ThrottleState.from_dict(stored)
        recent = throttle is not None and not state.idle(throttle, at - FORGET_AFTER)
        if key == keep or state.held is not None or recent:
            kept[key] = stored
    return kept


def decide(
    throttle: Throttle, state: ThrottleState, notice: Notice, now: datetime
) -> tuple[Send | Fold, ThrottleState]:
    """Send now or fold, by the notice's event time; ``now`` (the notification clock) only sets when a fold may be
    released if nothing follows it."""
    at = notice.created_at if state.latest is None else max(notice.created_at, state.latest)
    sent = tuple(s for s in state.sent if s > at - throttle.window)
    if len(sent) < throttle.limit:
        # The held notice, if any, is among the folded ones this one tells of: it is not sent on its own.
        return Send(state.folded), ThrottleState(sent=(*sent, at), latest=at)
    folded = (
        Folded(1, at, (notice.source_event_id,)) if state.folded is None else state.folded.plus(notice.source_event_id)
    )
    room_at = sent[0] + throttle.window  # event time at which the oldest send leaves the window
    release_after = now + (room_at - at) + throttle.grace
    if state.release_after is not None:
        release_after = max(release_after, state.release_after)
    return Fold(), ThrottleState(sent=sent, latest=at, folded=folded, held=notice, release_after=release_after)


def release_due(state: ThrottleState, now: datetime) -> bool:
    return state.held is not None and state.release_after is not None and state.release_after <= now


def release(throttle: Throttle, state: ThrottleState) -> tuple[Notice, Folded | None, ThrottleState] | None:
    """None if nothing is held; else the held notice to send on its own (nothing followed it), the other folded
    ones it carries, and the state after: that send takes its place in the window at the instant the window had
    room again (event time), not at the clock's time, so what follows it is decided by event times alone."""
    if state.held is None or state.folded is None:
        return None
    held, folded = state.held, state.folded
    room_at = state.sent[0] + throttle.window if len(state.sent) >= throttle.limit else held.created_at
    at = room_at if state.latest is None else max(room_at, state.latest)
    sent = tuple(s for s in state.sent if s > at - throttle.window)
    others = tuple(i for i in folded.source_event_ids if i != held.source_event_id)
    carry = Folded(folded.count - 1, folded.since, others) if folded.count > 1 else None
    return held, carry, ThrottleState(sent=(*sent, at), latest=at)


def fold_line(throttle: Throttle, carry: Folded) -> str:
    one, many = throttle.counted
    what = one if carry.count == 1 else many
    return f"And {carry.count} more {what} since {carry.since.strftime('%Y-%m-%d %H:%M UTC')}."


def carrying(notice: Notice, throttle: Throttle, carry: Folded, body_max: int = 4000) -> Notice:
    """``notice`` as it goes out carrying ``carry``: the line below its body (every channel shows the body), and
    ``data["folded"]`` for templates and machines (webhooks)."""
    line = fold_line(throttle, carry)
    body = f"{notice.body}\n\n{line}" if notice.body else line
    if len(body) > body_max:
        body = f"{notice.body[: body_max - len(line) - 3]}…\n\n{line}"
    return replace(notice, body=body, data={**notice.data, "folded": carry.to_data()})
