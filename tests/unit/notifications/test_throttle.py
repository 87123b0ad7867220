"""Throttles (notifications/throttle.py, the catalog's ``Throttle``): the send-or-fold decision by event time, what the
next notice carries, the release when nothing follows, and the catalog's choices — pure, no broker."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crownstream.notifications.catalog import CATALOG, TYPES, Notice, Throttle, _t
from crownstream.notifications.errors import InvalidCatalog
from crownstream.notifications.preferences import InvalidPreferences, parse_preferences
from crownstream.notifications.requests import RequestTemplate, single_request
from crownstream.notifications.throttle import (
    FOLDED_IDS_MAX,
    Fold,
    Folded,
    Send,
    ThrottleState,
    carrying,
    decide,
    forget_idle,
    key_of,
    release,
    release_due,
)
from crownstream.schemas.deliveries import Contact, decode_delivery

T0 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
RANKS = CATALOG["ranking.changed"].throttle
assert RANKS is not None
THREE_PER_10 = Throttle(3, timedelta(minutes=10), ("ranking change", "ranking changes"), grace=timedelta(seconds=30))


def rank(n: int, at: datetime, tournament: str | None = "cup-a") -> Notice:
    return Notice(
        "ranking.changed",
        f"rank-{n}",
        at,
        f"Your team is now #{n}",
        f"Moved to #{n}.",
        "/tournaments/cup-a/standings",
        {"new_rank": n},
        tournament,
    )


def run(
    throttle: Throttle, notices: list[Notice], now: datetime = T0, state: ThrottleState | None = None
) -> tuple[list[Send | Fold], ThrottleState]:
    state = state or ThrottleState()
    decisions = []
    for notice in notices:
        decision, state = decide(throttle, state, notice, now)
        decisions.append(decision)
    return decisions, state


# --- the catalog --------------------------------------------------------------------------------------------------


def test_critical_types_are_never_throttled_and_bursty_types_are():
    assert [t.name for t in TYPES if t.critical and t.throttle is not None] == []
    throttled = {t.name: (t.throttle.limit, t.throttle.window) for t in TYPES if t.throttle is not None}
    assert throttled["ranking.changed"] == (3, timedelta(minutes=10))
    # A notice whose own content a user needs is never folded into a count.
    for name in ("match.result", "match.scheduled", "match.disputed", "invite.sent", "payment.verified"):
        assert CATALOG[name].throttle is None, name


def test_a_critical_type_with_a_throttle_or_a_throttle_without_room_is_refused():
    with pytest.raises(InvalidCatalog, match="critical"):
        _t("payment.x", "payment.x", ("in_app",), "", critical=True, throttle=THREE_PER_10)
    with pytest.raises(InvalidCatalog, match="limit is at least 1"):
        Throttle(0, timedelta(minutes=1), ("thing", "things"))
    with pytest.raises(InvalidCatalog, match="window is a positive duration"):
        Throttle(1, timedelta(0), ("thing", "things"))


def test_a_user_may_take_every_notice_of_a_throttled_type_but_only_of_known_types():
    assert parse_preferences({"unthrottled_types": ["ranking.changed"]}).unthrottled_types == ["ranking.changed"]
    with pytest.raises(InvalidPreferences, match=r"unthrottled_types.*ranking\.chnaged"):
        parse_preferences({"unthrottled_types": ["ranking.chnaged"]})


# --- send or fold -------------------------------------------------------------------------------------------------


def test_a_burst_sends_the_limit_and_folds_the_rest():
    decisions, state = run(THREE_PER_10, [rank(n, T0 + timedelta(seconds=n)) for n in range(8)])
    assert decisions == [Send(), Send(), Send(), Fold(), Fold(), Fold(), Fold(), Fold()]
    assert state.folded == Folded(5, T0 + timedelta(seconds=3), tuple(f"rank-{n}" for n in range(3, 8)))
    assert state.held is not None and state.held.source_event_id == "rank-7"  # the newest: the rank now


def test_the_next_one_that_goes_out_carries_the_folded_count():
    _, state = run(THREE_PER_10, [rank(n, T0 + timedelta(seconds=n)) for n in range(8)])
    # Within the window: still folded.
    decision, state = decide(THREE_PER_10, state, rank(8, T0 + timedelta(minutes=9)), T0)
    assert decision == Fold()
    # Once the first send has left the window (18:00:00 + 10 min), the next one goes out and carries all six.
    decision, state = decide(THREE_PER_10, state, rank(9, T0 + timedelta(minutes=10, seconds=1)), T0)
    assert isinstance(decision, Send) and decision.carry is not None
    assert decision.carry.count == 6 and decision.carry.since == T0 + timedelta(seconds=3)
    assert decision.carry.source_event_ids == (*(f"rank-{n}" for n in range(3, 8)), "rank-8")
    assert state.folded is None and state.held is None
    carried = carrying(rank(9, T0 + timedelta(minutes=10, seconds=1)), THREE_PER_10, decision.carry)
    assert carried.body == "Moved to #9.\n\nAnd 6 more ranking changes since 2026-11-24 18:00 UTC."
    assert carried.data["folded"]["count"] == 6 and carried.data["new_rank"] == 9
    # ...and the one after it is a plain one again.
    decision, _ = decide(THREE_PER_10, state, rank(10, T0 + timedelta(minutes=10, seconds=2)), T0)
    assert decision == Send()


def test_the_window_slides():
    # 3 per 10 min, one every 4 minutes: never more than 3 in a window, so nothing is folded...
    decisions, _ = run(THREE_PER_10, [rank(n, T0 + timedelta(minutes=4 * n)) for n in range(10)])
    assert all(d == Send() for d in decisions)
    # ...but one every 3 minutes puts a 4th in the window of the 1st: 0, 3, 6 go out, 9 waits, 12 goes out.
    decisions, _ = run(THREE_PER_10, [rank(n, T0 + timedelta(minutes=3 * n)) for n in range(5)])
    assert decisions[:4] == [Send(), Send(), Send(), Fold()]
    assert isinstance(decisions[4], Send) and decisions[4].carry is not None and decisions[4].carry.count == 1
    body = carrying(rank(4, T0), THREE_PER_10, decisions[4].carry).body
    assert body == "Moved to #4.\n\nAnd 1 more ranking change since 2026-11-24 18:09 UTC."  # one: singular


def test_decisions_depend_on_event_times_not_on_the_clock():
    notices = [rank(n, T0 + timedelta(seconds=37 * n)) for n in range(40)]
    replayed_much_later, _ = run(THREE_PER_10, notices, now=T0 + timedelta(days=30))
    assert run(THREE_PER_10, notices, now=T0)[0] == replayed_much_later


def test_a_late_event_does_not_reopen_a_window_others_filled():
    _, state = run(THREE_PER_10, [rank(n, T0 + timedelta(minutes=5, seconds=n)) for n in range(3)])
    # Older than every send (a producer that stamped it late): judged at the key's latest time, not its own.
    decision, _ = decide(THREE_PER_10, state, rank(9, T0 - timedelta(hours=1)), T0)
    assert decision == Fold()


def test_each_tournament_has_its_own_throttle():
    assert key_of(rank(1, T0, "cup-a")) != key_of(rank(1, T0, "cup-b"))
    assert key_of(rank(1, T0, None)) == "ranking.changed|"


@given(st.lists(st.integers(min_value=0, max_value=3600), min_size=1, max_size=60), st.integers(1, 5))
def test_no_window_holds_more_than_the_limit_and_every_notice_is_sent_or_counted(seconds, limit):
    throttle = Throttle(limit, timedelta(minutes=10), ("ranking change", "ranking changes"))
    state, sends, counted = ThrottleState(), [], 0
    latest = None
    for n, s in enumerate(seconds):  # event times in any order (several partitions' producers)
        notice = rank(n, T0 + timedelta(seconds=s))
        decision, state = decide(throttle, state, notice, T0)
        latest = notice.created_at if latest is None else max(latest, notice.created_at)
        if isinstance(decision, Send):
            sends.append(latest)  # judged at the key's time
            counted += 1 + (decision.carry.count if decision.carry else 0)
    for at in sends:
        assert sum(at - throttle.window < s <= at for s in sends) <= limit
    held = state.folded.count if state.folded else 0
    assert counted + held == len(seconds)


# --- the release when nothing follows -----------------------------------------------------------------------------


def test_the_newest_folded_one_goes_out_when_the_window_has_room_again_carrying_the_others():
    state = ThrottleState()
    for n in range(6):  # in real time: the clock shows each event's time as it is decided
        notice = rank(n, T0 + timedelta(seconds=n))
        _, state = decide(THREE_PER_10, state, notice, notice.created_at)
    room = T0 + timedelta(minutes=10)  # the first send leaves the window
    assert state.release_after == room + THREE_PER_10.grace
    assert not release_due(state, room)
    assert release_due(state, room + THREE_PER_10.grace)
    released = release(THREE_PER_10, state)
    assert released is not None
    notice, carry, after = released
    assert notice.source_event_id == "rank-5"
    assert carry == Folded(2, T0 + timedelta(seconds=3), ("rank-3", "rank-4"))
    # The release took a place in the window at 18:10:00: the two sends of 18:00:01 and :02 are still in it.
    assert after.sent == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), room)
    assert decide(THREE_PER_10, after, rank(7, room), room)[0] == Fold()
    assert decide(THREE_PER_10, after, rank(7, room + timedelta(seconds=1)), room)[0] == Send()  # :01 has left
    assert release(THREE_PER_10, after) is None


def test_a_single_folded_notice_is_released_as_it_was():
    _, state = run(THREE_PER_10, [rank(n, T0) for n in range(4)])
    released = release(THREE_PER_10, state)
    assert released is not None and released[0] == rank(3, T0) and released[1] is None


def test_a_replay_of_old_events_still_waits_a_window_on_the_clock_before_releasing():
    # Events of last month read now (a backlog, a fresh consumer group): the release waits as long as the window
    # had left at the last fold, on the clock, instead of going out in the middle of a burst still being read.
    now = T0 + timedelta(days=30)
    _, state = run(THREE_PER_10, [rank(n, T0 + timedelta(seconds=n)) for n in range(5)], now=now)
    assert state.release_after is not None
    assert state.release_after >= now + timedelta(minutes=9)
    assert not release_due(state, now + timedelta(minutes=5))


def test_the_state_round_trips_through_its_stored_form():
    _, state = run(THREE_PER_10, [rank(n, T0 + timedelta(seconds=n)) for n in range(6)])
    stored = orjson.loads(orjson.dumps(state.to_dict()))
    assert ThrottleState.from_dict(stored) == state


def test_a_fold_keeps_a_bounded_list_of_ids_and_counts_on():
    _, state = run(THREE_PER_10, [rank(n, T0) for n in range(FOLDED_IDS_MAX + 13)])
    assert state.folded is not None
    assert state.folded.count == FOLDED_IDS_MAX + 10 and len(state.folded.source_event_ids) == FOLDED_IDS_MAX


def test_long_idle_keys_are_forgotten_but_not_held_ones_nor_recent_ones():
    _, idle = run(THREE_PER_10, [rank(1, T0)])
    _, holding = run(THREE_PER_10, [rank(n, T0) for n in range(4)])
    _, recent = run(THREE_PER_10, [rank(1, T0 + timedelta(days=9))])
    stored = {"ranking.changed|a": idle.to_dict(), "ranking.changed|b": holding.to_dict(), "roster.changed|": {}}
    stored["ranking.changed|c"] = recent.to_dict()
    kept = forget_idle(stored, "roster.changed|", T0 + timedelta(days=10))
    assert sorted(kept) == ["ranking.changed|b", "ranking.changed|c", "roster.changed|"]


# --- what goes out ------------------------------------------------------------------------------------------------


def test_a_carrying_notice_is_a_valid_request_on_every_channel_and_the_shared_template_renders_it_alike():
    carry = Folded(7, T0, ("rank-1", "rank-2"))
    notice = carrying(rank(9, T0 + timedelta(minutes=11)), RANKS, carry)
    contact = Contact(email="ana@example.org")
    for channel in ("in_app", "email", "discord", "webhook"):
        request = single_request(notice, "ana", channel, contact)
        encoded = request.encode()
        assert decode_delivery(encoded).body.endswith("And 7 more ranking changes since 2026-11-24 18:00 UTC.")
        assert decode_delivery(encoded).data["folded"] == {
            "count": 7,
            "since": "2026-11-24T18:00:00+00:00",
            "source_event_ids": ["rank-1", "rank-2"],
        }
        rendered = RequestTemplate(notice, channel).render("ana", contact.model_dump(mode="json"))
        assert rendered == encoded


def test_a_carried_line_fits_a_body_at_its_limit():
    long = rank(1, T0)
    long = Notice(long.notification_type, long.source_event_id, long.created_at, long.title, "x" * 4000)
    carried = carrying(long, RANKS, Folded(3, T0))
    assert len(carried.body) <= 4000 and carried.body.endswith("And 3 more ranking changes since 2026-11-24 18:00 UTC.")


def test_the_same_burst_in_any_clock_gives_the_same_requests():
    # What a replay compares: requests built from the decisions, with the clock anywhere.
    rng = random.Random(7)
    notices = [rank(n, T0 + timedelta(seconds=rng.randint(0, 1800))) for n in range(30)]

    def requests(now: datetime) -> list[bytes]:
        state, out = ThrottleState(), []
        for notice in notices:
            decision, state = decide(RANKS, state, notice, now)
            if isinstance(decision, Send):
                sent = carrying(notice, RANKS, decision.carry) if decision.carry else notice
                out.append(single_request(sent, "ana", "in_app", Contact()).encode())
        return out

    assert requests(T0) == requests(T0 + timedelta(days=400))
