"""Battle-royale standings: point tables, tiebreakers, corrections, overrides, match-point finals."""

from __future__ import annotations

import pytest

from crownstream.standings.leaderboard import (
    Disqualification, Leaderboard, LobbyRow, MatchResult, Override, recompute,
)
from crownstream.standings.scoring import POINT_TABLES, Rules, TeamStanding, sort_key


def lobby(match_id: str, seq: int, *rows: tuple[str, int, int], rev: int = 1, at: str | None = None) -> MatchResult:
    return MatchResult(match_id, rev, seq, at or f"2026-11-24T{10 + seq:02d}:00:00+00:00",
                       tuple(LobbyRow(t, p, k) for t, p, k in rows))


def ranks(board: Leaderboard) -> list[str]:
    return [s.team_id for _, s in board.standings()]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("pubgm_2023", [10, 6, 5, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("pubgm_2020", [15, 12, 10, 8, 6, 4, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0]),
        ("free_fire", [12, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]),
        ("algs", [12, 9, 7, 5, 4, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
    ],
)
def test_point_tables(table, expected):
    rules = Rules.from_config({"point_table": table})
    assert [rules.placement_score(p) for p in range(1, len(expected) + 1)] == expected
    assert rules.placement_score(60) == 0


def test_custom_table_kill_points_and_cap():
    rules = Rules.from_config({"point_table": [20, 10, 5], "kill_points": 2, "kill_cap": 5})
    assert rules.placement_score(2) == 10 and rules.placement_score(4) == 0
    assert rules.kill_score(3) == 6 and rules.kill_score(9) == 10


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"point_table": "pubg_2099"}, "unknown point table 'pubg_2099'"),
        ({"point_table": [10, -1]}, "must not be negative"),
        ({"tiebreakers": ["total_points", "vibes"]}, "unknown tiebreaker"),
        ({"kill_points": -1}, "kill_points must not be negative"),
    ],
)
def test_bad_rules_are_explained(config, message):
    with pytest.raises(ValueError, match=message):
        Rules.from_config(config)


def test_rules_round_trip_through_config():
    rules = Rules.from_config({"point_table": "algs", "kill_cap": 6, "tiebreakers": ["total_points", "wins"],
                               "starting_points": {"a": 3}, "match_point_threshold": 50})
    assert Rules.from_config(rules.to_config()) == rules


def test_a_match_scores_placement_and_kills():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
    board.apply_result(lobby("m1", 1, ("a", 1, 5), ("b", 2, 9), ("c", 9, 0)))
    a, b, c = board.team("a"), board.team("b"), board.team("c")
    assert (a.total_points, a.placement_points, a.kill_points, a.wins) == (15, 10, 5, 1)
    assert (b.total_points, b.kills, b.best_placement) == (15, 9, 2)
    assert c.total_points == 0 and c.matches_played == 1
    # a and b tie on 15: default order breaks it by kills, so b is first.
    assert ranks(board) == ["b", "a", "c"]


TIE = (("x", 1, 0), ("y", 2, 4))  # pubgm_2023: x = 10 + 0, y = 6 + 4: tied on 10


@pytest.mark.parametrize(
    ("tiebreakers", "first"),
    [
        (["total_points", "wins"], "x"),
        (["total_points", "placement_points"], "x"),
        (["total_points", "kill_points"], "y"),
        (["total_points", "kills"], "y"),
        (["total_points", "best_placement"], "x"),
    ],
)
def test_each_tiebreaker(tiebreakers, first):
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023", "tiebreakers": tiebreakers}))
    board.apply_result(lobby("m1", 1, *TIE))
    assert ranks(board)[0] == first


def test_last_match_placement_and_earliest_completion_tiebreakers():
    rules = Rules.from_config({"point_table": [10, 5], "kill_points": 0,
                               "tiebreakers": ["total_points", "last_match_placement"]})
    board = Leaderboard(rules)
    board.apply_result(lobby("m1", 1, ("p", 1, 0), ("q", 2, 0)))
    board.apply_result(lobby("m2", 2, ("q", 1, 0), ("p", 2, 0)))
    assert ranks(board) == ["q", "p"]  # both 15; q placed better in the last match
    earliest = Leaderboard(Rules.from_config({"point_table": [10, 5], "kill_points": 0,
                                              "tiebreakers": ["total_points", "earliest_completion"]}))
    earliest.apply_result(lobby("m1", 1, ("p", 1, 0), ("q", 2, 0)))
    earliest.apply_result(lobby("m2", 2, ("q", 1, 0), ("p", 2, 0)))
    earliest.apply_result(lobby("m3", 3, ("q", 3, 0), ("p", 3, 0)))
    # Both reached 15 in match 2 … equal times fall through to team id, deterministically.
    assert ranks(earliest) == ["p", "q"]
    later = Leaderboard(earliest.rules)
    later.apply_result(lobby("m1", 1, ("p", 1, 0), ("q", 2, 0)))
    later.apply_result(lobby("m2", 2, ("q", 2, 0), ("p", 3, 0)))  # q: 10, p: 10 — p reached it in match 1
    assert ranks(later) == ["p", "q"]


def test_team_id_is_the_final_deterministic_tiebreak():
    a = TeamStanding("a", total_points=5)
    b = TeamStanding("b", total_points=5)
    assert sort_key(a, ("total_points",)) < sort_key(b, ("total_points",))


def test_duplicate_and_stale_revisions_change_nothing():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
    assert board.apply_result(lobby("m1", 1, ("a", 1, 2), ("b", 2, 0))).applied
    assert board.apply_result(lobby("m1", 1, ("a", 1, 2), ("b", 2, 0))).status == "duplicate"
    corrected = board.apply_result(lobby("m1", 1, ("b", 1, 3), ("a", 2, 2), rev=2))
    assert corrected.applied
    assert board.apply_result(lobby("m1", 1, ("a", 1, 2), ("b", 2, 0), rev=1)).status == "stale"
    assert board.team("b").total_points == 13 and board.team("a").total_points == 8
    assert {(c.team_id, c.old_rank, c.new_rank) for c in corrected.rank_changes} == {("b", 2, 1), ("a", 1, 2)}


def test_correction_can_drop_a_team_from_a_lobby():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
    board.apply_result(lobby("m1", 1, ("a", 1, 2), ("ghost", 2, 0)))
    board.apply_result(lobby("m1", 1, ("a", 1, 2), rev=2))
    assert board.team("ghost") is None and ranks(board) == ["a"]  # as a recompute would list it


def test_override_pins_placement_over_every_revision_and_is_audited():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
    board.apply_result(lobby("m1", 1, ("a", 1, 0), ("b", 5, 0)))
    board.apply_override(Override("ov-1", "m1", "b", 2, None, "ref-1", "replay", "2026-11-24T12:00:00+00:00"))
    assert board.team("b").total_points == 6
    board.apply_result(lobby("m1", 1, ("a", 1, 0), ("b", 7, 3), rev=2))
    assert board.team("b").placement_points == 6 and board.team("b").kills == 3  # kills from the revision
    assert board.apply_override(Override("ov-1", "m1", "b", 2, None, "ref-1", "replay",
                                         "2026-11-24T12:00:00+00:00")).status == "duplicate"
    trail = board.audit_trail("b")
    assert [(o["actor"], o["reason"], o["placement"]) for o in trail] == [("ref-1", "replay", 2)]
    assert board.team_matches("b")[0]["overridden"] is True


def test_later_override_wins_in_any_arrival_order():
    first = Override("ov-1", "m1", "b", 3, None, "ref", "r1", "2026-11-24T12:00:00+00:00")
    second = Override("ov-2", "m1", "b", 1, None, "ref", "r2", "2026-11-24T12:05:00+00:00")
    for order in ([first, second], [second, first]):
        board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
        board.apply_result(lobby("m1", 1, ("a", 1, 0), ("b", 5, 0)))
        for o in order:
            board.apply_override(o)
        assert board.team("b").placement_points == 10
        assert len(board.audit_trail("b")) == 2


def test_disqualification_applies_from_its_match_on_and_ranks_last():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
    board.apply_result(lobby("m1", 1, ("cheat", 1, 10), ("b", 2, 0)))
    board.apply_result(lobby("m2", 2, ("cheat", 1, 10), ("b", 2, 0)))
    board.disqualify(Disqualification("dq-1", "cheat", 2, "ref", "aimbot", "2026-11-24T13:00:00+00:00"))
    cheat = board.team("cheat")
    assert cheat.total_points == 20 and cheat.disqualified  # match 1 counted, match 2 not
    assert ranks(board) == ["b", "cheat"]


def test_forfeit_scores_zero_but_counts_as_played():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
    board.apply_result(lobby("m1", 1, ("a", 1, 4), ("b", 2, 0)))
    board.forfeit("m1", "a")
    a = board.team("a")
    assert (a.total_points, a.matches_played, a.wins) == (0, 1, 0)
    assert board.forfeit("m1", "a").status == "duplicate"


def test_match_point_final_champion_must_win_after_reaching_threshold():
    rules = Rules.from_config({"point_table": "algs", "kill_points": 1, "match_point_threshold": 20})
    board = Leaderboard(rules)
    # m1: a wins with 10 kills -> 22 points: reaches the threshold IN this match, so is not champion yet.
    board.apply_result(lobby("m1", 1, ("a", 1, 10), ("b", 2, 0), ("c", 3, 0)))
    assert board.champion is None
    # m2: c wins but c is not eligible (7 + 12 = 19 before? no: c had 7 before m2) -> no champion.
    board.apply_result(lobby("m2", 2, ("c", 1, 0), ("b", 2, 0), ("a", 3, 0)))
    assert board.champion is None
    # m3: a (eligible since m1) wins -> champion, ranked first whatever the points.
    board.apply_result(lobby("m3", 3, ("a", 1, 0), ("b", 2, 30), ("c", 3, 0)))
    assert board.champion == "a"
    assert ranks(board)[0] == "a" and board.team("b").total_points > board.team("a").total_points


def test_match_point_uses_match_order_not_arrival_order():
    rules = Rules.from_config({"point_table": "algs", "match_point_threshold": 20})
    results = [lobby("m1", 1, ("a", 1, 10), ("b", 2, 0)), lobby("m2", 2, ("a", 1, 0), ("b", 2, 0))]
    forwards, backwards = Leaderboard(rules), Leaderboard(rules)
    for r in results:
        forwards.apply_result(r)
    for r in reversed(results):
        backwards.apply_result(r)
    assert forwards.champion == backwards.champion == "a"


def test_rank_changes_include_teams_pushed_down():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023", "kill_points": 0}))
    board.apply_result(lobby("m1", 1, ("a", 1, 0), ("b", 2, 0), ("c", 3, 0), ("d", 4, 0)))
    change = board.apply_result(lobby("m2", 2, ("d", 1, 0), ("a", 8, 0), ("b", 8, 0), ("c", 8, 0)))
    moved = {c.team_id: (c.old_rank, c.new_rank) for c in change.rank_changes}
    # d: 4 + 10 = 14 overtakes everyone; a 11, b 7, c 6
    assert moved == {"d": (4, 1), "a": (1, 2), "b": (2, 3), "c": (3, 4)}
    assert ranks(board) == ["d", "a", "b", "c"]


def test_paging_and_subset_of_matches():
    board = Leaderboard(Rules.from_config({"point_table": "pubgm_2023"}))
    m1 = lobby("m1", 1, *[(f"t{i}", i + 1, 0) for i in range(10)])
    m2 = lobby("m2", 2, *[(f"t{i}", 10 - i, 0) for i in range(10)])
    board.apply_result(m1)
    board.apply_result(m2)
    page = board.standings(offset=2, limit=3)
    assert [rank for rank, _ in page] == [3, 4, 5]
    only_m2 = recompute(board.rules, [m1, m2], only_matches={"m2"})
    assert only_m2[0].team_id == "t9" and only_m2[0].total_points == 10
