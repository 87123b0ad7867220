"""When to try a failed delivery again (pure, unit-tested): each channel's retry schedule with jitter — by default
a day and more for webhooks and Discord, two for email (crownstream/settings.py ``DEFAULT_RETRY_SCHEDULES_S``) —
or, for short horizons (tests, the demo), exponential backoff for ``CROWNSTREAM_SINK_MAX_ATTEMPTS`` attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``delays[i]``: how long after failed attempt ``i + 1`` the next one is due; ``jitter``: the fraction each
    delay varies by either way, so deliveries that failed together (an outage) do not come back together."""

    delays: tuple[float, ...]
    jitter: float = 0.0

    @property
    def attempts(self) -> int:
        return len(self.delays) + 1

    @property
    def horizon_s(self) -> float:
        """From the first attempt to the last, without jitter."""
        return float(sum(self.delays))

    def delay_after(
        self,
        attempt: int,
        hinted_s: float | None = None,
        hint_cap_s: float = 300.0,
        rand: random.Random | None = None,
    ) -> float | None:
        """The delay before the attempt after failed attempt ``attempt`` (1-based), never sooner than what the
        destination asked for (``hinted_s``: Retry-After, honoured up to ``hint_cap_s`` — the value is the
        receiver's, it may be huge); None once the schedule is spent (the delivery goes to the dead-letter topic)."""
        if attempt > len(self.delays):
            return None
        base = self.delays[max(0, attempt - 1)]
        delay = base * (1 + self.jitter * (2 * (rand or random).random() - 1))
        return max(delay, min(hinted_s, hint_cap_s)) if hinted_s is not None else delay


def retry_policy(channel: str, settings: Any) -> RetryPolicy:
    """The channel's policy from the settings: its schedule, or the exponential override when
    ``sink_max_attempts`` is set."""
    if settings.sink_max_attempts is not None:
        delays = tuple(
            min(settings.sink_backoff_max_s, settings.sink_backoff_base_s * 2**i)
            for i in range(settings.sink_max_attempts - 1)
        )
        return RetryPolicy(delays, jitter=0.5)  # "equal jitter" of the backoff below: half fixed, half random
    return RetryPolicy(tuple(settings.sink_retry_schedule_s[channel]), settings.sink_retry_jitter)


def parse_delay(value: object, now: float | None = None) -> float | None:
    """A receiver's "wait this long" (Retry-After, X-RateLimit-Reset-After, Discord's JSON ``retry_after``) in
    seconds, or None if it is not a usable number. Never NaN, never negative; it may be ``inf`` (``1e999``),
    which callers cap with ``CROWNSTREAM_SINK_RETRY_AFTER_MAX_S`` — the value is the receiver's, not ours.
    Retry-After's HTTP-date form is read too (relative to ``now``, a Unix time)."""
    import math

    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            number = float(text)
        except ValueError:
            import time
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
            if when is None or when.tzinfo is None:
                return None
            number = when.timestamp() - (time.time() if now is None else now)
    else:
        return None
    if math.isnan(number):
        return None
    return max(0.0, number)
