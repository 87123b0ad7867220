"""A circuit breaker per destination (a webhook endpoint, a Discord webhook URL): after a run of failed attempts
the destination gets nothing but one probe per interval, so a dead endpoint costs one request per interval instead
of one per queued delivery, and the deliveries waiting for it keep their attempts (they are handed back unattempted,
not failed). The interval doubles while probes fail, up to a cap; one success closes the circuit. Pure: the
dispatcher feeds it outcomes and asks it before each send, with its own clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float | None = None  # None: closed
    interval: float = 0.0
    probing: bool = False  # a probe is in flight (half-open)


class Circuits:
    def __init__(self, failures_to_open: int, open_s: float, open_max_s: float) -> None:
        self.failures_to_open = failures_to_open
        self.open_s = open_s
        self.open_max_s = open_max_s
        self._states: dict[str, _State] = {}
        self._proven: set[str] = set()  # answered with a success since their last failure

    def wait_s(self, target: str, now: float) -> float:
        """0: send now (closed, or this send is the probe of an open circuit whose interval passed); otherwise how
        long until a probe may go. A probe is let through once: until its outcome, the others wait."""
        state = self._states.get(target)
        if state is None or state.open_until is None:
            return 0.0
        if state.probing:
            return max(self.open_s, state.open_until - now)
        if now >= state.open_until:
            state.probing = True
            return 0.0
        return state.open_until - now

    def succeeded(self, target: str) -> None:
        self._states.pop(target, None)
        self._proven.add(target)

    def proven(self, target: str) -> bool:
        """Whether ``target`` answered with a success since its last failure (in this worker): until then it gets at
        most ``failures_to_open`` sends at a time, so that a dead destination costs that many attempts before its
        circuit opens, not a whole first wave of the per-destination concurrency."""
        return target in self._proven

    def failed(self, target: str, now: float) -> bool:
        """Record a failed attempt; True when it opened (or kept open) the circuit."""
        self._proven.discard(target)
        state = self._states.setdefault(target, _State())
        state.failures += 1
        if state.open_until is not None:  # a failed probe: wait longer
            state.interval = min(self.open_max_s, state.interval * 2)
            state.open_until, state.probing = now + state.interval, False
            return True
        if state.failures >= self.failures_to_open:
            state.interval = self.open_s
            state.open_until = now + state.interval
            return True
        return False

    def hold(self, target: str, until: float) -> None:
        """The destination asked to be left alone until ``until`` (429 or 503 with Retry-After): nothing goes to it
        before then — not only the delivery that was told — and then one probe, as for an open circuit."""
        state = self._states.setdefault(target, _State())
        if state.open_until is None:
            state.interval = self.open_s
        state.open_until = max(state.open_until or 0.0, until)
        state.probing = False

    def open_until(self, target: str) -> float | None:
        """When the open circuit of ``target`` lets its next probe go (None: closed)."""
        state = self._states.get(target)
        return None if state is None else state.open_until

    def open_targets(self, now: float) -> list[str]:
        """Destinations to leave out of a claim now (open, and no probe due)."""
        return [t for t, s in self._states.items() if s.open_until is not None and (s.probing or now < s.open_until)]

    def forget(self, target: str) -> None:
        """A probe that was never sent (handed back): the next one may go."""
        state = self._states.get(target)
        if state is not None:
            state.probing = False
