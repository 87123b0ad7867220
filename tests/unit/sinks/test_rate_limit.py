"""The per-destination pacing (sinks/rate_limit.py), on a clock the tests move by hand."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crownstream.sinks.rate_limit import MIN_RATE, RateLimits, check_rate, usable_rate


def test_sends_are_spaced_one_over_the_rate_apart():
    limits = RateLimits()
    assert limits.take("ep", 4.0, now=10.0) == 0.0  # the first goes at once
    assert limits.wait_s("ep", 4.0, now=10.0) == pytest.approx(0.25)
    assert limits.take("ep", 4.0, now=10.0) == pytest.approx(0.25)  # the next free slot, reserved
    assert limits.wait_s("ep", 4.0, now=10.1) == pytest.approx(0.4)  # ... and the one after it
    assert limits.wait_s("ep", 4.0, now=10.5) == 0.0


def test_an_idle_destination_gets_no_burst_for_the_time_it_was_idle():
    limits = RateLimits()
    limits.take("ep", 2.0, now=0.0)
    # Long after: one send at once, then the spacing again — no saved-up allowance.
    assert limits.take("ep", 2.0, now=100.0) == 0.0
    assert limits.take("ep", 2.0, now=100.0) == pytest.approx(0.5)


def test_destinations_are_paced_independently():
    limits = RateLimits()
    limits.take("slow", 1.0, now=0.0)
    assert limits.wait_s("slow", 1.0, now=0.0) == pytest.approx(1.0)
    assert limits.wait_s("other", 1.0, now=0.0) == 0.0
    assert limits.take("other", 1.0, now=0.0) == 0.0


def test_limited_lists_the_paced_destinations_and_forgets_the_rest():
    limits = RateLimits()
    limits.take("a", 1.0, now=0.0)
    limits.take("b", 10.0, now=0.0)
    limits.take("c", 1.0, now=0.0)
    rates = {"a": 1.0, "b": 10.0}  # c's owner removed its limit
    assert sorted(limits.limited(0.05, rates)) == ["a", "b"]
    assert limits.limited(0.5, rates) == ["a"]  # b's slot came
    assert limits.next_free_s(0.5) == pytest.approx(0.5)
    assert limits.limited(1.0, rates) == []
    assert limits.next_free_s(1.0) is None


def test_handed_back_deliveries_get_slots_of_their_own_after_every_slot_taken():
    limits = RateLimits()
    assert limits.take("ep", 10.0, now=0.0) == 0.0
    # Three more claimed at once: each gets its own later slot, one tenth of a second apart.
    assert [limits.book("ep", 10.0, now=0.0) for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    # A later claim's handed-back one goes after those, not on top of them.
    assert limits.book("ep", 10.0, now=0.05) == pytest.approx(0.35)
    # Bookings do not take slots from sends: the next send may still go at 0.1.
    assert limits.wait_s("ep", 10.0, now=0.1) == 0.0


def test_a_rate_must_be_at_least_the_minimum_and_finite():
    limits = RateLimits()
    for bad in (0.0, -1.0, MIN_RATE / 2, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"from 0\.01 up"):
            check_rate(bad)
        with pytest.raises(ValueError, match=r"from 0\.01 up"):
            limits.take("ep", bad, now=0.0)
        with pytest.raises(ValueError, match=r"from 0\.01 up"):
            limits.book("ep", bad, now=0.0)
    assert check_rate(MIN_RATE) == MIN_RATE and check_rate(1000.0) == 1000.0


def test_a_stored_limit_is_always_usable():
    """A hand-edited row must not stop the dispatcher: too low or NaN paces at the minimum, infinity at nothing."""
    assert usable_rate(5.0) == 5.0
    assert usable_rate(0.0) == usable_rate(float("nan")) == usable_rate(-3.0) == MIN_RATE
    assert 1e6 < usable_rate(float("inf")) < float("inf")


@given(
    rate=st.floats(min_value=0.1, max_value=1000.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=60),
)
def test_no_window_of_a_second_holds_more_sends_than_the_rate(rate, gaps):
    """Whatever the arrival pattern, sends made at the slots ``take`` gives are at least 1/rate apart."""
    limits = RateLimits()
    now, sent = 0.0, []
    for gap in gaps:
        now += gap
        sent.append(now + limits.take("ep", rate, now))
    sent.sort()
    for earlier, later in itertools.pairwise(sent):
        assert later - earlier >= 1.0 / rate - 1e-9
