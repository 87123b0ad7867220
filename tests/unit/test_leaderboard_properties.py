"""Properties of the incremental leaderboard: order-independent, idempotent, equal to a recompute, and its
reported rank changes are exactly the difference between the standings before and after."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crownstream.standings.leaderboard import Disqualification, Leaderboard, LobbyRow, MatchResult, Override, recompute
from crownstream.standings.scoring import POINT_TABLES, TIEBREAKERS, Rules

TEAMS = [f"t{i}" for i in range(8)]


@st.composite
def lobby_results(draw):
    match_no = draw(st.integers(1, 5))
    revision = draw(st.integers(1, 3))
    teams = draw(st.lists(st.sampled_from(TEAMS), min_size=1, max_size=len(TEAMS), unique=True))
    placements = draw(st.permutations(list(range(1, len(teams) + 1))))
    rows = tuple(LobbyRow(t, p, draw(st.integers(0, 8))) for t, p in zip(teams, placements))
    return MatchResult(f"m{match_no}", revision, match_no, f"2026-11-24T1{match_no}:00:00+00:00", rows)


def _dedupe_revisions(results):
    """A (match, revision) identifies one result: generated duplicates of it must be identical."""
    seen = {}
    for r in results:
        seen.setdefault((r.match_id, r.revision), r)
    return [seen[(r.match_id, r.revision)] for r in results]


overrides_st = st.builds(
    lambda n, m, t, p, k: Override(f"ov-{n}", f"m{m}", t, p, k, "ref", "review", f"2026-11-24T20:{n:02d}:00+00:00"),
    st.integers(0, 50), st.integers(1, 5), st.sampled_from(TEAMS), st.integers(1, 8),
    st.none() | st.integers(0, 5),
)
dqs_st = st.builds(lambda t, s: Disqualification(f"dq-{t}-{s}", t, s, "ref", "rules", "2026-11-24T21:00:00+00:00"),
                   st.sampled_from(TEAMS), st.integers(1, 5))
rules_st = st.builds(
    lambda table, tb, threshold: Rules.from_config({"point_table": table, "tiebreakers": tb,
                                                     "match_point_threshold": threshold}),
    st.sampled_from(sorted(POINT_TABLES)),
    st.lists(st.sampled_from(TIEBREAKERS), min_size=1, max_size=4, unique=True),
    st.none() | st.integers(10, 40),
)


def apply_all(board: Leaderboard, events) -> None:
    for kind, payload in events:
        if kind == "result":
            board.apply_result(payload)
        elif kind == "override":
            board.apply_override(payload)
        elif kind == "dq":
            board.disqualify(payload)
        else:
            board.forfeit(*payload)


@st.composite
def event_streams(draw):
    results = _dedupe_revisions(draw(st.lists(lobby_results(), min_size=1, max_size=12)))
    overrides = draw(st.lists(overrides_st, max_size=4, unique_by=lambda o: o.event_id))
    dqs = draw(st.lists(dqs_st, max_size=2))
    forfeits = draw(st.lists(st.tuples(st.sampled_from([f"m{i}" for i in range(1, 6)]), st.sampled_from(TEAMS)),
                             max_size=3))
    events = ([("result", r) for r in results] + [("override", o) for o in overrides]
              + [("dq", d) for d in dqs] + [("forfeit", f) for f in forfeits])
    return events, results, overrides, dqs, forfeits


def table(board: Leaderboard):
    return [(rank, s) for rank, s in board.standings()]


@settings(max_examples=200, deadline=None)
@given(rules_st, event_streams(), st.randoms(use_true_random=False))
def test_any_order_and_replays_give_the_recomputed_standings(rules, stream, rnd):
    events, results, overrides, dqs, forfeits = stream
    in_order = Leaderboard(rules)
    apply_all(in_order, events)
    shuffled = events[:]
    rnd.shuffle(shuffled)
    replayed = Leaderboard(rules)
    apply_all(replayed, shuffled + events)  # a different order, then everything again
    expected = recompute(rules, results, overrides, dqs, forfeits)
    got = [s for _, s in table(in_order)]
    assert got == [s for _, s in table(replayed)]
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(rules_st, event_streams())
def test_reported_rank_changes_are_the_real_differences(rules, stream):
    events = stream[0]
    board = Leaderboard(rules)
    for kind, payload in events:
        before = {s.team_id: (rank, s.total_points) for rank, s in board.standings()}
        if kind == "result":
            change = board.apply_result(payload)
        elif kind == "override":
            change = board.apply_override(payload)
        elif kind == "dq":
            change = board.disqualify(payload)
        else:
            change = board.forfeit(*payload)
        after = {s.team_id: (rank, s.total_points) for rank, s in board.standings()}
        expected = {t: (before.get(t, (None, None)), now) for t, now in after.items() if before.get(t) != now}
        reported = {c.team_id: ((c.old_rank, c.old_points), (c.new_rank, c.new_points)) for c in change.rank_changes}
        assert reported == expected
