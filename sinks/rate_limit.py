"""Pacing per destination: at most ``rate`` sends a second to one webhook endpoint, as its owner asked.

GCRA (the generic cell rate algorithm: a token bucket kept as one timestamp per destination) without a burst
allowance: sends to a destination are spaced at least 1/rate apart, so no one-second window holds more than ``rate``
of them — what "N messages a second" means to a receiver sized for it.

The dispatcher (sinks/base.py) asks before each send, with its own clock:

* ``limited``: destinations with no free slot now, left out of the claim (as open circuits are);
* ``take``: a delivery claimed for a destination gets the next free slot (now, or a moment later: it waits that
  moment in memory rather than going back to the ledger);
* ``book``: one whose slot is further off goes back to the ledger unattempted (it keeps its attempts; nothing
  fails), due at a slot of its own after every slot already handed out, so a backlog comes back one delivery per
  slot instead of all at once (each handed-back row is rewritten once, not once per slot).

Pure, and kept in each worker's memory: one worker at a time delivers to a limited endpoint (the holder of its
advisory lock, sinks/pacing_owner.py), so W workers do not let W x its rate through.
"""

from __future__ import annotations

from collections.abc import Mapping

# The lowest rate a destination may be limited to: one delivery every 100 s. Far lower and a backlog's slots would lie
# years ahead (and 1/rate overflows for a rate near zero).
MIN_RATE = 0.01


class RateLimits:
    def __init__(self) -> None:
        # destination -> when its next send may go (the dispatcher's monotonic seconds)
        self._next: dict[str, float] = {}
        # destination -> the slot after the last one handed to a delivery sent back to the ledger
        self._booked: dict[str, float] = {}

    def wait_s(self, target: str, rate: float, now: float) -> float:
        """0: a send to ``target`` may go now; otherwise how long until one may. Reserves nothing."""
        return max(0.0, self._next.get(target, now) - now)

    def take(self, target: str, rate: float, now: float) -> float:
        """Reserve the next free slot for a send: how long until it (0.0: now). The slot after it is 1/rate on."""
        check_rate(rate)
        slot = max(now, self._next.get(target, now))
        self._next[target] = slot + 1.0 / rate
        return slot - now

    def book(self, target: str, rate: float, now: float) -> float:
        """A slot for a delivery handed back to the ledger, after every slot already taken or booked: how long from
        now until it. The delivery reserves nothing in ``take``'s chain: when it is claimed again it takes the next
        free slot then, like any other (a delivery that came in meanwhile may have gone first)."""
        check_rate(rate)
        slot = max(now, self._next.get(target, now), self._booked.get(target, now))
        self._booked[target] = slot + 1.0 / rate
        return slot - now

    def limited(self, now: float, rates: Mapping[str, float]) -> list[str]:
        """Destinations that may not be sent to now (left out of a claim). Forgets what no longer matters: a
        destination whose slots have all passed is as good as new, one no longer limited is not paced at all."""
        for target in [t for t, at in self._booked.items() if at <= now or t not in rates]:
            del self._booked[target]
        paced = []
        for target, at in list(self._next.items()):
            if at <= now or target not in rates:
                del self._next[target]
            else:
                paced.append(target)
        return paced

    def next_free_s(self, now: float) -> float | None:
        """How long until the first paced destination may be sent to again (None: none is paced): the dispatcher
        claims then, for what waited for that slot."""
        later = [at for at in self._next.values() if at > now]
        return min(later) - now if later else None


def check_rate(rate: float) -> float:
    """``rate`` if it is a rate a destination may be limited to; ValueError saying what is allowed otherwise."""
    if not rate >= MIN_RATE or rate == float("inf"):  # `not >=`: NaN too
        raise ValueError(f"a rate limit must be a number of messages a second from {MIN_RATE:g} up, not {rate!r}")
    return rate


def usable_rate(stored: float) -> float:
    """A stored limit the pacing can use whatever it is (the API never stores a bad one; a hand-edited row might):
    below the minimum, or NaN, counts as the minimum; infinity as a rate so high it paces nothing."""
    if stored >= MIN_RATE:
        return min(stored, 1e9)
    return MIN_RATE
