"""What every sink is, and the dispatcher that drives any of them from the ledger.

A sink is one small class per channel:

* ``rows(requests)``   accept: which ledger rows a batch of requests becomes (usually one per request);
* ``deliver(claimed)`` send one claimed delivery and say how it went (an ``Outcome``);
* ``flush()``          called by the agent once accepted rows are committed, before Kafka offsets are;
* ``backpressure()``   true while the sink cannot take more work, so the agent stops pulling records.

Everything else — claiming due rows, concurrency, recording outcomes, retries with backoff, the attempt
budget, the dead-letter topic, circuit breakers and the pacing of destinations their owner rate-limited
(``rate_limits()``) — is the ``Dispatcher``'s, the same for every channel. A new channel is a
new module with a ``Sink`` subclass.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from crownstream.metrics import CHANNEL_PAUSED, DELIVERIES_TOTAL, DELIVERY_RECLAIMS, DELIVERY_SECONDS
from crownstream.schemas.deliveries import DeliveryRequest
from crownstream.settings import Settings
from crownstream.sinks.circuit import Circuits
from crownstream.sinks.ledger import Claimed, Ledger, Outcome, describe_db_error, is_transient, ledger_row
from crownstream.sinks.pacing_owner import PaceOwnership
from crownstream.sinks.rate_limit import RateLimits
from crownstream.sinks.retry import retry_policy
from crownstream.sinks.switches import is_paused

log = logging.getLogger(__name__)

DeadLetter = Callable[[Claimed, Outcome], Awaitable[None]]

# Outcomes are recorded in set-based batches: the first outcome of a batch waits up to RECORD_LINGER_S for others to
# join it, less once RECORD_BATCH_TARGET are waiting. A record transaction costs the worker about a millisecond of CPU
# whatever its size (pool checkout with its ping, BEGIN, the UPDATE, COMMIT: six round trips) against a few µs a
# row, so recording outcomes as they came (one or two a transaction under load) cost as much as the sends. The
# price is this much more of the crash window between a send and its record, in which a kill -9 makes the delivery
# go out again, with the same webhook-id / Message-ID for the receiver to deduplicate by.
# Answers that ask a destination's senders to slow down: with a Retry-After, the whole destination waits that long.
SLOW_DOWN = frozenset({429, 502, 503, 504})
RECORD_LINGER_S = 0.05
RECORD_BATCH_TARGET = 256
RECORD_BATCH_MAX = 1000
# While a destination's circuit stays open, its waiting deliveries are moved past the claims at most this often.
DEFER_REPEAT_S = 1.0
# Put on the outcome queue by stop(), after the last outcome: the record loop records what came before and ends.
_DRAINED: Any = object()
# Pacing (rate-limited destinations, sinks/rate_limit.py). A claimed delivery whose slot is at most PACE_HOLD_S off
# waits for it in memory (cheaper and more punctual than a round trip through the ledger); one further off goes back
# to the ledger unattempted, due PACE_EARLY_S before its slot so that it has been recorded (RECORD_LINGER_S) and can
# be claimed when the slot comes — the claim leaves the destination out until then.
PACE_HOLD_S = 0.25
PACE_EARLY_S = 0.1


class Sink(ABC):
    channel: ClassVar[str]
    # Whether ``target_of`` names a destination that can be down as a whole (a webhook endpoint, a Discord webhook),
    # so that a run of failures opens its circuit (sinks/circuit.py). Not for email (one relay, and a recipient's
    # mailbox failing says nothing of the others) nor the in-app feed (our own database).
    circuit_breaker: ClassVar[bool] = False

    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger
        self.dispatcher: Dispatcher | None = None

    async def start(self) -> None:  # noqa: B027  (an optional hook: a sink without connections has nothing to open)
        """Open connections (SMTP, HTTP pools)."""

    async def stop(self) -> None:  # noqa: B027  (an optional hook, like start)
        """Close them."""

    async def rows(self, requests: Sequence[DeliveryRequest]) -> list[dict[str, Any]]:
        return [ledger_row(r) for r in requests]

    async def accept(self, requests: Sequence[DeliveryRequest]) -> None:
        """Make the requests durable in the ledger (pending); duplicates of known keys are no-ops."""
        await self.ledger.accept(await self.rows(requests))

    async def flush(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def backpressure(self) -> bool:
        return self.dispatcher is not None and self.dispatcher.saturated()

    async def held_targets(self) -> list[str]:
        """Ledger targets whose deliveries wait (a webhook endpoint its owner paused): left out of claims."""
        return []

    async def rate_limits(self) -> Mapping[str, float]:
        """Destinations (as ``target_of`` names them) their owner limited to so many messages a second: the dispatcher
        paces sends to them; deliveries over the rate wait, unattempted."""
        return {}

    def target_of(self, claimed: Claimed) -> str:
        """The destination a delivery competes for (a webhook endpoint, a Discord webhook, the SMTP relay):
        at most ``CROWNSTREAM_SINK_MAX_IN_FLIGHT_PER_TARGET`` of a worker's sends go to one at a time."""
        return claimed.target or claimed.dedup_key

    @abstractmethod
    async def deliver(self, claimed: Claimed) -> Outcome:
        """One attempt. Must not raise for a destination's failure: return ``Outcome.failed``/``dead``."""


class Dispatcher:
    """Claims due rows of one channel, delivers them concurrently, records outcomes as they become known in
    batches (the crash window between a send and its record is ``RECORD_LINGER_S`` and one set-based UPDATE)."""

    def __init__(
        self, sink: Sink, settings: Settings, dead_letter: DeadLetter, on_exhausted: DeadLetter | None = None
    ) -> None:
        """``on_exhausted``: told of each delivery that gave up after its whole retry schedule (its owner is told)."""
        self.sink = sink
        self.on_exhausted = on_exhausted
        self.settings = settings
        self.ledger = sink.ledger
        self.dead_letter = dead_letter
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._results: asyncio.Queue[tuple[Claimed, Outcome]] = asyncio.Queue()
        self._batch_full = asyncio.Event()
        self._in_flight: set[asyncio.Task] = set()
        self._per_target: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._record_failing = False
        self._paused = False
        self._paused_checked = float("-inf")
        self._pacing = RateLimits()
        self._rates: Mapping[str, float] = {}
        # Pacing state is this worker's own, so one worker at a time sends to a limited destination: the holder of
        # its lock (sinks/pacing_owner.py); the others leave it out of their claims.
        self._pace_owner = PaceOwnership(self.ledger.engine, settings.sink_poll_interval_s)
        # The labelled metrics of this channel, looked up once: a labels() lookup per delivery (two of them, each
        # taking the metric's lock) was a measurable part of a webhook's CPU time.
        self._policy = retry_policy(sink.channel, settings)
        self._circuits = (
            Circuits(settings.sink_circuit_failures, settings.sink_circuit_open_s, settings.sink_circuit_open_max_s)
            if sink.circuit_breaker
            else None
        )
        self._deferrals: dict[str, float] = {}  # open destination -> when its rows were last deferred (monotonic)
        self._seconds = DELIVERY_SECONDS.labels(sink.channel)
        self._outcomes = {
            status: DELIVERIES_TOTAL.labels(sink.channel, status) for status in ("sent", "failed", "dead")
        }
        sink.dispatcher = self

    def wake(self) -> None:
        self._wake.set()

    def saturated(self) -> bool:
        return len(self._in_flight) >= self.settings.sink_max_in_flight

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name=f"dispatch-{self.sink.channel}"),
            asyncio.create_task(self._record_loop(), name=f"record-{self.sink.channel}"),
        ]

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming, let sends in flight finish and their outcomes be recorded (what is not recorded in
        time is re-sent after its lease by whoever claims it next)."""
        deadline = time.monotonic() + grace_s
        claim_task, record_task = self._tasks or (None, None)
        self._stopping = True
        self._wake.set()
        self._room.set()
        # The claim loop first: a claim in progress still hands out what it leased, and those sends must be
        # among the ones waited for below.
        if claim_task is not None:
            await asyncio.wait([claim_task], timeout=_left(deadline))
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=_left(deadline))
        if record_task is not None:
            # Drained, not cancelled: cancelling it could cut a batch it already took off the queue mid-write,
            # leaving rows leased ("sending") whose outcome — dead-lettered, even — was known.
            self._results.put_nowait(_DRAINED)
            self._batch_full.set()
            await asyncio.wait([record_task], timeout=_left(deadline))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pace_owner.close()  # another worker may pace this one's rate-limited destinations now

    async def _claim_loop(self) -> None:
        s = self.settings
        failures = 0
        while not self._stopping:
            if self._record_failing:
                # Outcomes that could not be recorded (PostgreSQL away) go first: when it is back, a claim
                # before them would find their leases expired and re-send what was already delivered.
                await asyncio.sleep(0.05)
                continue
            if await self._channel_paused():
                await asyncio.sleep(s.sink_poll_interval_s)
                continue
            room = s.sink_max_in_flight - len(self._in_flight)
            # Claim in sizeable batches: refilling each freed slot with a claim of its own would spend a
            # PostgreSQL round trip per delivery.
            if room <= 0 or (self._in_flight and room < min(s.sink_claim_batch, s.sink_max_in_flight) // 2):
                self._room.clear()
                await self._room.wait()
                continue
            if self._deferrals:
                await self._defer_open()
            try:
                saturated = [t for t, n in self._per_target.items() if n >= self._cap(t)]
                if self._circuits is not None:
                    saturated += self._circuits.open_targets(time.monotonic())
                saturated += await self.sink.held_targets()
                self._rates, elsewhere = await self._paced_here()
                saturated += elsewhere
                saturated += self._pacing.limited(time.monotonic(), self._rates)
                claimed = await self.ledger.claim(
                    self.sink.channel, min(room, s.sink_claim_batch), s.sink_lease_s, skip_targets=saturated
                )
                failures = 0
            except Exception as exc:  # PostgreSQL down or restarting: wait, nothing is lost (rows stay due)
                failures += 1
                log.warning("ledger claim failed; retrying", extra={"channel": self.sink.channel, "error": repr(exc)})
                await asyncio.sleep(min(5.0, 0.2 * 2 ** min(failures, 5)))
                continue
            for item in claimed:
                if item.reclaimed:
                    DELIVERY_RECLAIMS.labels(self.sink.channel).inc()
                key = self.sink.target_of(item)
                if self._per_target.get(key, 0) >= self._cap(key):
                    # One slow destination must not take every slot: hand the row back, unattempted. Due again at
                    # once: the claims leave the destination out while it is full, and a freed slot wakes them.
                    self._results.put_nowait((item, Outcome.deferred(0.0)))
                    continue
                now = time.monotonic()
                rate = self._rates.get(key)
                if rate is not None and self._pacing.wait_s(key, rate, now) > PACE_HOLD_S:
                    # Over its owner's rate limit: back unattempted (nothing fails, its attempts are kept), due at a
                    # slot of its own.
                    due_in = self._pacing.book(key, rate, now)
                    self._results.put_nowait((item, Outcome.deferred(max(0.0, due_in - PACE_EARLY_S))))
                    continue
                wait = self._circuits.wait_s(key, now) if self._circuits is not None else 0.0
                if wait > 0:
                    # Its destination's circuit is open: back unattempted (its attempts are kept) until the probe.
                    self._results.put_nowait((item, Outcome.deferred(wait)))
                    continue
                hold = self._pacing.take(key, rate, now) if rate is not None else 0.0
                self._per_target[key] = self._per_target.get(key, 0) + 1
                task = asyncio.create_task(self._deliver(item, key, hold))
                self._in_flight.add(task)
                task.add_done_callback(self._done)
            if len(claimed) < min(room, s.sink_claim_batch):
                # Nothing more is due now: sleep until the agent accepts new rows or the poll interval passes
                # (retries falling due, leases of dead workers running out).
                self._wake.clear()
                # A paced destination's next slot may come sooner: what waited for it is claimed then.
                pace = self._pacing.next_free_s(time.monotonic())
                try:
                    async with asyncio.timeout(
                        s.sink_poll_interval_s if pace is None else min(s.sink_poll_interval_s, pace)
                    ):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _paced_here(self) -> tuple[Mapping[str, float], list[str]]:
        """The rate limits this worker paces — of the destinations limited now, those it holds the lock of — and the
        limited destinations it leaves out of its claims (another worker delivers to them, at their rate)."""
        rates = await self.sink.rate_limits()
        if not rates and not self._pace_owner.holding():
            return rates, []
        owned = await self._pace_owner.owned(rates)
        return {t: r for t, r in rates.items() if t in owned}, [t for t in rates if t not in owned]

    async def _channel_paused(self) -> bool:
        """The operator's switch (sinks/switches.py), read at most once per poll interval. Unreadable (PostgreSQL
        away): the last known state — the claim that follows will wait for PostgreSQL anyway."""
        now = time.monotonic()
        if now - self._paused_checked >= self.settings.sink_poll_interval_s:
            self._paused_checked = now
            try:
                paused = await is_paused(self.ledger.engine, self.sink.channel)
            except Exception as exc:
                log.warning(
                    "reading the channel switch failed", extra={"channel": self.sink.channel, "error": repr(exc)}
                )
            else:
                if paused != self._paused:
                    log.warning(
                        "channel paused by an operator: deliveries held in the ledger"
                        if paused
                        else "channel resumed: held deliveries go out, oldest first",
                        extra={"channel": self.sink.channel},
                    )
                self._paused = paused
                CHANNEL_PAUSED.labels(self.sink.channel).set(1 if paused else 0)
        return self._paused

    def _done(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        self._room.set()

    async def _deliver(self, item: Claimed, target_key: str, hold_s: float = 0.0) -> None:
        if hold_s > 0:
            await asyncio.sleep(hold_s)  # its slot under the destination's rate limit
        started = time.perf_counter()
        try:
            outcome = await self.sink.deliver(item)
        except Exception as exc:
            if is_transient(exc):  # PostgreSQL or the network away: retried, never lost
                log.warning(
                    "sink raised; the delivery will be retried", extra={"dedup_key": item.dedup_key, "error": repr(exc)}
                )
                outcome = Outcome.failed(f"internal error: {type(exc).__name__}", retry_in=0.0)
            else:  # data PostgreSQL refuses, a bug: no retry will fix it — to the DLQ, the channel goes on
                log.exception(
                    "sink raised; the delivery goes to the dead-letter topic", extra={"dedup_key": item.dedup_key}
                )
                outcome = Outcome.dead(f"internal error: {describe_db_error(exc)}", reason_code="delivery_error")
        finally:
            left = self._per_target.get(target_key, 1) - 1
            if left > 0:
                self._per_target[target_key] = left
            else:
                self._per_target.pop(target_key, None)
            if left == self._cap(target_key) - 1:
                self._wake.set()  # the claim skipped this destination's due rows; they may go now
        elapsed = time.perf_counter() - started
        self._seconds.observe(elapsed)
        if self._circuits is not None:
            self._note_circuit(target_key, outcome)
        exhausted = False
        if outcome.status == "failed":
            delay = self._policy.delay_after(
                item.attempt, hinted_s=outcome.retry_in or None, hint_cap_s=self.settings.sink_retry_after_max_s
            )
            if delay is None:
                exhausted = True
                outcome = Outcome.dead(
                    f"gave up after {item.attempt} attempts over {_duration(self._policy.horizon_s)}; "
                    f"last error: {outcome.error}",
                    code=outcome.code,
                    digest=outcome.digest,
                )
            else:
                outcome = Outcome.failed(
                    outcome.error or "failed", retry_in=delay, code=outcome.code, digest=outcome.digest
                )
        if outcome.status == "dead":
            await self._dead_letter(item, outcome)
            if exhausted and self.on_exhausted is not None:
                try:
                    await self.on_exhausted(item, outcome)
                except Exception:  # the notice is best effort; the outcome must still be recorded
                    log.exception("could not tell the owner of an exhausted delivery", extra={"key": item.dedup_key})
        counter = self._outcomes.get(outcome.status)
        if counter is None:  # a status a sink made up beside the three: counted under its own label, as before
            counter = DELIVERIES_TOTAL.labels(self.sink.channel, outcome.status)
        counter.inc()
        if outcome.status != "deferred":
            outcome = replace(outcome, latency_ms=elapsed * 1000)  # kept with the attempt (the owner's API shows it)
        self._results.put_nowait((item, outcome))
        if self._results.qsize() >= RECORD_BATCH_TARGET:
            self._batch_full.set()

    def _cap(self, target_key: str) -> int:
        """Sends one destination may have in flight: the setting, or — until it has answered with a success since
        its last failure — no more than the failures that open its circuit (circuit.Circuits.proven): a dead
        endpoint's first wave was the whole per-destination concurrency (64 refused sends in bench ``circuit``)."""
        full = self.settings.sink_max_in_flight_per_target
        if self._circuits is None or self._circuits.proven(target_key):
            return full
        return min(full, self.settings.sink_circuit_failures)

    async def _defer_open(self) -> None:
        """Destinations whose circuit is open: their waiting deliveries become due when the probe may go, in one
        statement each, so that no claim steps past them meanwhile (a healthy endpoint's p99 rose 10-20x beside a
        dead one with 10,000 queued: bench ``circuit``). Repeated at most once a second while the circuit stays
        open: deliveries accepted since, or handed back by sends that were in flight, are due again. Best effort:
        if PostgreSQL is away, the claims skip them as before."""
        assert self._circuits is not None
        now = time.monotonic()
        for target_key, last in list(self._deferrals.items()):
            until = self._circuits.open_until(target_key)
            if until is None or until <= now:
                del self._deferrals[target_key]  # closed, or its probe may go: nothing to hold back
                continue
            if now - last < DEFER_REPEAT_S:
                continue
            self._deferrals[target_key] = now
            try:
                await self.ledger.defer_destination(self.sink.channel, target_key, until - now)
            except Exception as exc:
                log.warning("could not defer a failing destination's deliveries", extra={"error": repr(exc)})
                return

    def _note_circuit(self, target_key: str, outcome: Outcome) -> None:
        assert self._circuits is not None
        if outcome.status == "sent":
            self._circuits.succeeded(target_key)
        elif outcome.status == "failed":
            now = time.monotonic()
            opened = self._circuits.failed(target_key, now)
            if outcome.code in SLOW_DOWN and outcome.retry_in:
                # It asked for a pause (Retry-After, already capped by the sink): every delivery to it waits.
                self._circuits.hold(target_key, now + outcome.retry_in)
                opened = True
            if opened:
                self._deferrals[target_key] = float("-inf")  # its waiting rows moved past the claims (_defer_open)
                log.info(
                    "destination failing or asking to wait: its circuit is open, one probe per interval",
                    # A digest, not the key: a Discord webhook's key is its URL, which holds the webhook's token.
                    extra={
                        "channel": self.sink.channel,
                        "target": hashlib.sha256(target_key.encode()).hexdigest()[:16],
                    },
                )
        else:  # dead (the destination answered: it refuses this one) or deferred: let the next probe go
            self._circuits.forget(target_key)

    async def _dead_letter(self, item: Claimed, outcome: Outcome) -> None:
        # Before the ledger says "dead": a crash in between re-sends the DLQ record, never loses it.
        delay = 0.2
        while True:
            try:
                await self.dead_letter(item, outcome)
                return
            except Exception as exc:
                log.warning("delivery dead-letter send failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def _record_loop(self) -> None:
        drained = False
        while not drained:
            first = await self._results.get()
            if first is _DRAINED:
                return
            batch = [first]
            if self._results.qsize() < RECORD_BATCH_TARGET and not self._stopping:
                self._batch_full.clear()
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives as
                    # its own timeout fires, and stop() then waited for ever on a task that went on waiting.
                    async with asyncio.timeout(RECORD_LINGER_S):
                        await self._batch_full.wait()
                except TimeoutError:
                    pass
            while not self._results.empty() and len(batch) < RECORD_BATCH_MAX:
                result = self._results.get_nowait()
                if result is _DRAINED:
                    drained = True  # stop() put it last: record what came before it, then end
                    break
                batch.append(result)
            await self._record(batch)

    async def _record(self, batch: list[tuple[Claimed, Outcome]]) -> None:
        """Record a batch; PostgreSQL away -> keep the outcomes and try again. An outcome PostgreSQL refuses
        (it should not happen: outcome texts are cleaned) must not stall the channel: the batch is recorded
        one by one, a refused outcome once more without its texts, and if even that is refused it is
        dropped (logged): the row's lease runs out and it is sent again — a duplicate, never a stall."""
        delay = 0.1
        while True:
            try:
                await self.ledger.record(batch)
                self._record_failing = False
                return
            except Exception as exc:
                if not is_transient(exc):
                    break
                self._record_failing = True
                log.warning(
                    "recording outcomes failed; retrying",
                    extra={"channel": self.sink.channel, "count": len(batch), "error": repr(exc)},
                )
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
        self._record_failing = False
        for item, outcome in batch:
            plain = Outcome(
                outcome.status,
                retry_in=outcome.retry_in,
                error=None if outcome.error is None else "the outcome's text could not be stored",
                reason_code=outcome.reason_code,
            )
            for attempt in ((item, outcome), (item, plain)):
                try:
                    await self._record_one(attempt)
                    break
                except Exception as exc:
                    log.error(
                        "an outcome could not be recorded",
                        extra={
                            "channel": self.sink.channel,
                            "dedup_key": item.dedup_key,
                            "error": describe_db_error(exc),
                        },
                    )

    async def _record_one(self, result: tuple[Claimed, Outcome]) -> None:
        delay = 0.1
        while True:
            try:
                await self.ledger.record([result])
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.1f} s"
