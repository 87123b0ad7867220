"""When to try a failed delivery again: exponential backoff with jitter (pure, unit-tested)."""

from __future__ import annotations

import random


def backoff(attempt: int, base_s: float, cap_s: float, rand: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1`` after ``attempt`` failed ones.

    "Equal jitter": half of the exponential delay is fixed, half random, so retries of many deliveries that
    failed together (an endpoint's outage) spread out, yet none comes back almost at once.
    """
    exp = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    r = (rand or random).random()
    return exp / 2 + r * exp / 2


def next_delay(
    attempt: int, base_s: float, cap_s: float, hinted_s: float | None = None, rand: random.Random | None = None
) -> float:
    """The backoff, but never sooner than what the destination asked for (Retry-After, retry_after)."""
    delay = backoff(attempt, base_s, cap_s, rand)
    if hinted_s is not None:
        delay = max(delay, min(hinted_s, cap_s))
    return delay


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
