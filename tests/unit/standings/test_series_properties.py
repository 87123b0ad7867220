"""Properties: a series is a function of its set of facts (arrival order and replays change nothing), and
incremental group standings always equal the from-scratch recompute."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from crownstream.standings.groups import GroupPointsRule, GroupStandings, recompute_group
from crownstream.standings.series import (
    ChangeStatus,
    Forfeit,
    GameOverride,
    GameResult,
    Series,
    SeriesFormat,
    SeriesResult,
    SeriesStatus,
)

A, B = "team-a", "team-b"
SETTINGS = settings(max_examples=150, deadline=None)
STAMPS = [f"2026-11-24T2{h}:00:00Z" for h in range(4)] + ["2026-11-24T22:00:00+01:00"]  # one duplicate instant


@st.composite
def series_events(draw):
    """A format and a bag of events for one series, including duplicates, stale and conflicting revisions,
    competing overrides and competing forfeits."""
    fmt = SeriesFormat(draw(st.sampled_from([1, 2, 3, 5, 7])), draw(st.sampled_from(["awarded", "played"])))
    game_no = st.integers(1, fmt.best_of)
    team = st.sampled_from([A, B])
    results = st.builds(
        lambda n, w, r, s: GameResult("s", n, w, r, {A: s[0], B: s[1]} if s else None),
        game_no,
        team,
        st.integers(1, 3),
        st.none() | st.tuples(st.integers(0, 13), st.integers(0, 13)),
    )
    overrides = st.builds(
        lambda i, n, w, at: GameOverride(f"ov-{i}", "s", n, w, "admin", "review", at),
        st.integers(0, 4),
        game_no,
        team,
        st.sampled_from(STAMPS),
    )
    forfeits = st.builds(
        lambda i, t, at: Forfeit(f"ff-{i}", "s", t, at, "admin", "no-show"),
        st.integers(0, 2),
        team,
        st.sampled_from(STAMPS),
    )
    events = draw(st.lists(st.one_of(results, results, results, overrides, forfeits), max_size=14))
    duplicated = events + draw(st.lists(st.sampled_from(events), max_size=4)) if events else events
    return fmt, duplicated


def build(fmt: SeriesFormat, events) -> Series:
    s = Series("s", A, B, fmt)
    for e in events:
        assert s.apply(e).status != ChangeStatus.REJECTED
    return s


@SETTINGS
@given(series_events(), st.randoms(use_true_random=False))
def test_any_order_of_the_same_events_gives_the_same_series(case, rnd):
    fmt, events = case
    shuffled = list(events)
    rnd.shuffle(shuffled)
    one, other = build(fmt, events), build(fmt, shuffled)
    assert one.to_dict() == other.to_dict()
    assert one.state() == other.state()


@SETTINGS
@given(series_events())
def test_replaying_everything_again_changes_nothing(case):
    fmt, events = case
    s = build(fmt, events)
    before, state = s.to_dict(), s.state()
    for e in events:
        change = s.apply(e)
        assert not change.result_changed
        assert change.status in (ChangeStatus.DUPLICATE, ChangeStatus.STALE, ChangeStatus.CONFLICT)
    assert s.to_dict() == before and s.state() == state
    assert Series.from_dict(json.loads(json.dumps(before))).state() == state


@SETTINGS
@given(series_events())
def test_derived_state_is_consistent(case):
    fmt, events = case
    state = build(fmt, events).state()
    counted = [g for g in state.games if g.counted]
    if state.forfeited_by is None:
        assert (state.score_a, state.score_b) == (
            sum(g.winner_team_id == A for g in counted),
            sum(g.winner_team_id == B for g in counted),
        )
        assert (state.status == SeriesStatus.COMPLETED) == fmt.is_decided(state.score_a, state.score_b)
    else:
        assert state.status == SeriesStatus.COMPLETED and state.winner != state.forfeited_by
    state.result()  # always a valid, self-consistent SeriesResult


# --- groups ------------------------------------------------------------------------------------------


@st.composite
def group_updates(draw):
    """Teams, a points rule and a sequence of (possibly corrected, possibly reopened) series results."""
    teams = [f"t{i}" for i in range(draw(st.integers(2, 6)))]
    fmt = SeriesFormat(draw(st.sampled_from([1, 2, 3, 5])))
    rule = GroupPointsRule(fmt.best_of, {f"{a}-{b}": draw(st.integers(0, 3)) for a, b in fmt.final_scores()})
    pairs = [(a, b) for i, a in enumerate(teams) for b in teams[i + 1 :]]

    def result(data):
        (a, b), leg = data["pair"], data["leg"]
        sid = f"{a}-{b}-{leg}"  # a series keeps its teams; a double round robin has two legs per pair
        if data["kind"] == "open":
            return SeriesResult(sid, a, b, fmt.best_of, SeriesStatus.IN_PROGRESS, 0, 0)
        if data["kind"] == "forfeit":
            loser = data["team"]
            ga, gb = data["tally"]
            return SeriesResult(sid, a, b, fmt.best_of, SeriesStatus.COMPLETED, ga, gb, b if loser == a else a, loser)
        ga, gb = data["score"]
        return SeriesResult(
            sid, a, b, fmt.best_of, SeriesStatus.COMPLETED, ga, gb, None if ga == gb else (a if ga > gb else b)
        )

    one = st.fixed_dictionaries(
        {
            "pair": st.sampled_from(pairs),
            "leg": st.integers(0, 1),
            "kind": st.sampled_from(["done", "done", "done", "open", "forfeit"]),
            "score": st.sampled_from(fmt.final_scores()),
            "team": st.sampled_from([0, 1]),
            "tally": st.tuples(st.integers(0, fmt.wins_needed), st.integers(0, fmt.wins_needed)),
        }
    ).map(lambda d: result({**d, "team": d["pair"][d["team"]]}))
    return teams, rule, draw(st.lists(one, max_size=25))


@SETTINGS
@given(group_updates())
def test_incremental_group_equals_recompute_after_every_update(case):
    teams, rule, updates = case
    g = GroupStandings("g", tuple(teams), rule)
    current: dict[str, SeriesResult] = {}
    for r in updates:
        before = {row.team_id: row.rank for row in g.standings()}
        change = g.update(r)
        current[r.series_id] = r
        expected = recompute_group(teams, current.values(), rule, "g")
        assert g.standings() == expected
        assert {c.team_id: (c.old_rank, c.new_rank) for c in change.rank_changes} == {
            row.team_id: (before[row.team_id], row.rank) for row in expected if before[row.team_id] != row.rank
        }
    # Competition ranking: each rank is 1 + the teams above it, and teams share one only when no rule split them.
    rows = g.standings()
    for position, row in enumerate(rows, start=1):
        assert row.rank == (rows[position - 2].rank if row.decided_by == "tie" else position)
    assert GroupStandings.from_dict(json.loads(json.dumps(g.to_dict()))).standings() == g.standings()


@SETTINGS
@given(group_updates(), st.randoms(use_true_random=False))
def test_group_standings_do_not_depend_on_the_order_of_final_results(case, rnd):
    teams, rule, updates = case
    final = {r.series_id: r for r in updates}
    shuffled = list(final.values())
    rnd.shuffle(shuffled)
    one, other = GroupStandings("g", tuple(teams), rule), GroupStandings("g", tuple(teams), rule)
    for r in final.values():
        one.update(r)
    for r in shuffled:
        other.update(r)
    assert one.standings() == other.standings()
    points = [row.points for row in one.standings()]
    assert points == sorted(points, reverse=True)
