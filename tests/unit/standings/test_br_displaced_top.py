"""``Leaderboard(displaced_top=N)``: the rank changes an event reports are bounded by the teams whose points it
changed plus the top N — what keeps an event's cost independent of the stage's size — and are otherwise exactly
the difference between before and after."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crownstream.standings.battle_royale import Leaderboard
from crownstream.standings.br_inputs import LobbyRow, MatchResult
from crownstream.standings.rules import RuleSet
from tests.unit.standings.test_br_properties import SETTINGS, STAGE, positions, stages


@SETTINGS
@given(stages(), st.integers(0, 6), st.data())
def test_reports_moved_teams_and_displaced_teams_within_the_top_n(stage, top, data):
    rules, events = stage
    board = Leaderboard(rules, STAGE, displaced_top=top)
    for event in data.draw(st.permutations(events)):
        before = positions(board)
        change = board.apply(event)
        after = positions(board)
        expected = {}
        for t in before.keys() | after.keys():
            (old_rank, old_points), (new_rank, new_points) = before.get(t, (None, None)), after.get(t, (None, None))
            if (old_rank, old_points) == (new_rank, new_points):
                continue
            in_top = any(r is not None and r <= top for r in (old_rank, new_rank))
            if t in change.changed or in_top:  # its own standing changed, or it is in the top N
                expected[t] = ((old_rank, old_points), (new_rank, new_points))
        reported = {c.team_id: ((c.old_rank, c.old_points), (c.new_rank, c.new_points)) for c in change.rank_changes}
        assert reported == expected


def test_a_lobby_in_a_1000_team_stage_reports_its_teams_and_the_top_n_only():
    rules = RuleSet.from_dict({"format": "battle_royale", "point_table": "algs", "kill_points": 1})
    full, bounded = Leaderboard(rules, "br"), Leaderboard(rules, "br", displaced_top=10)
    for m in range(100):
        rows = tuple(LobbyRow(f"team-{(m * 20 + i) % 1000:04d}", i + 1, i % 3) for i in range(20))
        result = MatchResult("br", f"m{m}", 1, m + 1, "2026-11-24T12:00:00+00:00", rows)
        all_changes, few = full.apply_result(result).rank_changes, bounded.apply_result(result).rank_changes
    assert len(all_changes) > 500  # the unbounded report grows with the stage
    assert len(few) <= 20 + 10
    assert full.standings() == bounded.standings()


def test_negative_top_is_refused():
    rules = RuleSet.from_dict({"format": "battle_royale", "point_table": "algs"})
    with pytest.raises(ValueError, match="displaced_top"):
        Leaderboard(rules, "br", displaced_top=-1)
