"""Wall-clock maths of digests and quiet hours, in the user's IANA timezone, DST-safe; and the clock itself.

All functions take ``now`` (aware) instead of reading the time, so tests drive them through DST changes.
Local wall-clock times are turned into instants with zoneinfo: a time that does not exist on a
spring-forward day (02:30 in Europe/Berlin on the last Sunday of March) resolves to the instant the clock
shows after the jump (03:30), and an ambiguous one on a fall-back day to its first occurrence — so every
local day has exactly one digest instant.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crownstream.notifications.preferences import Preferences, QuietHours


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ShiftedClock(Clock):
    """A clock that starts at ``start`` and runs ``speed`` times faster than real time: tests cross a digest
    hour or a whole day in seconds, with real workers (CROWNSTREAM_CLOCK_START / CROWNSTREAM_CLOCK_SPEED)."""

    start: datetime
    speed: float = 1.0

    def __post_init__(self) -> None:
        self._origin = _time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(_time.monotonic() - self._origin) * self.speed)


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the local clock in ``zone`` shows ``at`` on ``day`` (see module doc).

    zoneinfo with fold=0 reads a wall time with the offset in force *before* a transition: for a time in
    a spring-forward gap that is the instant the clock shows an hour later (02:30 -> 03:30), for an
    ambiguous fall-back time the first of its two occurrences. Both are what a "daily at 02:30" user means.
    """
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def digest_due(prefs: Preferences, now: datetime, last_sent_day: str | None) -> tuple[str, datetime] | None:
    """(local day, instant) of the digest that is due at ``now``, or None: at most one per local day, never
    before that day's digest time."""
    zone = prefs.zone
    today = now.astimezone(zone).date()
    at = local_instant(today, prefs.digest.time, zone)
    if now < at or last_sent_day == today.isoformat():
        return None
    return today.isoformat(), at


def next_digest_at(prefs: Preferences, now: datetime, last_sent_day: str | None) -> datetime:
    """When the next digest may go out (for status and tests)."""
    zone = prefs.zone
    today = now.astimezone(zone).date()
    at = local_instant(today, prefs.digest.time, zone)
    if now < at and last_sent_day != today.isoformat():
        return at
    return local_instant(today + timedelta(days=1), prefs.digest.time, zone)


def _in_window(t: time, q: QuietHours) -> bool:
    if q.start < q.end:
        return q.start <= t < q.end
    return t >= q.start or t < q.end  # wraps midnight, e.g. 22:00-07:00


def quiet_until(prefs: Preferences, now: datetime) -> datetime | None:
    """The instant quiet hours end if ``now`` is inside them, else None."""
    q = prefs.quiet_hours
    if q is None:
        return None
    zone = prefs.zone
    local = now.astimezone(zone)
    if not _in_window(local.time().replace(tzinfo=None), q):
        return None
    end_day = local.date() if local.time().replace(tzinfo=None) < q.end else local.date() + timedelta(days=1)
    end = local_instant(end_day, q.end, zone)
    return end if end > now else now
