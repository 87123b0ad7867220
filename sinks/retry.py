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


def next_delay(attempt: int, base_s: float, cap_s: float, hinted_s: float | None = None,
               rand: random.Random | None = None) -> float:
    """The backoff, but never sooner than what the destination asked for (Retry-After, retry_after)."""
    delay = backoff(attempt, base_s, cap_s, rand)
    if hinted_s is not None:
        delay = max(delay, min(hinted_s, cap_s))
    return delay
