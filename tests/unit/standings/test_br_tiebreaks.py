"""Battle-royale tiebreaks by averages and counts, placement tables as cumulative tiers, and ties that no rule
decides shown as ties — checked against seven published FNCS leaderboards."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from crownstream.schemas.events import BattleRoyaleRules
from crownstream.standings.battle_royale import Leaderboard, recompute
from crownstream.standings.br_inputs import LobbyRow, MatchResult
from crownstream.standings.point_tables import PointTable
from crownstream.standings.rules import RuleSet
from crownstream.standings.tiebreakers import ranked

DATA = Path(__file__).parent / "data"


def _fncs() -> dict:
    return json.loads((DATA / "br_fncs_ch2s5_grand_finals.json").read_text(encoding="utf-8"))


def _fncs_rules(data: dict, tiebreakers: list[str] | None = None) -> RuleSet:
    return RuleSet(
        PointTable.from_value({"cumulative_tiers": data["cumulative_tiers"]}),
        kill_points=data["kill_points"],
        tiebreakers=tuple(tiebreakers or data["tiebreakers"]),
    )


def _results(window: dict) -> list[MatchResult]:
    return [
        MatchResult("gf", f"g{i}", 1, i, "2021-03-13T22:00:00Z", tuple(LobbyRow(*row) for row in game))
        for i, game in enumerate(window["games"], start=1)
    ]


def test_the_fncs_cumulative_tiers_are_epics_30_25_20_14_then_one_less_to_17th():
    table = PointTable.from_value({"cumulative_tiers": _fncs()["cumulative_tiers"]})
    assert table.points == (30, 25, 20, 14, *range(13, 0, -1))
    assert table.points_for(18) == 0
    assert PointTable.from_value(table.to_value()) == table  # the rules echo the tiers as published


def test_seven_fncs_grand_finals_leaderboards_are_reproduced_rank_for_rank():
    data = _fncs()
    rules = _fncs_rules(data)
    decided: dict[str, int] = {}
    for window in data["windows"]:
        board = Leaderboard(rules, "gf")
        for result in _results(window):
            board.apply_result(result)
        page = board.page()
        got = [(rank, s.team_id, s.total_points, s.wins, s.kills, s.matches_played) for rank, _, s in page]
        assert got == sorted(tuple(row) for row in window["published"]), window["window"]
        for _, rule, _ in page[1:]:
            decided[rule] = decided.get(rule, 0) + 1
    # Ties on points were decided by Victory Royales, average eliminations (a team that missed a lobby averages
    # over the games it played), average placement and average time alive: each rule decides at least one pair.
    assert {rule for rule in decided if rule != "total_points"} == {
        "wins",
        "average_kills",
        "average_placement",
        "average_time_alive",
    }


def test_without_the_averages_the_published_order_is_not_reached():
    # The same windows ranked by total kills instead of average eliminations: some tied pair comes out the other way,
    # so the test above would catch an engine that summed instead of averaging.
    data = _fncs()
    rules = _fncs_rules(data, ["total_points", "wins", "kills", "best_placement"])
    differences = 0
    for window in data["windows"]:
        got = [s.team_id for s in recompute(rules, _results(window))]
        differences += got != [row[1] for row in sorted(window["published"])]
    assert differences > 0


def test_teams_level_on_every_rule_share_a_rank_and_the_api_says_which_rule_split_each_pair():
    rules = RuleSet(PointTable((10, 6, 3)), tiebreakers=("total_points", "wins"))
    board = Leaderboard(rules, "s")
    board.apply_result(MatchResult("s", "m1", 1, 1, "2026-01-01T10:00:00Z", (LobbyRow("a", 1), LobbyRow("b", 2))))
    board.apply_result(MatchResult("s", "m2", 1, 2, "2026-01-01T11:00:00Z", (LobbyRow("c", 2), LobbyRow("d", 3))))
    # a 10 (1 win), b 6, c 6, d 3: b and c are level on points and wins.
    assert [(rank, rule, s.team_id) for rank, rule, s in board.page()] == [
        (1, "", "a"),
        (2, "total_points", "b"),
        (2, "tie", "c"),
        (4, "total_points", "d"),
    ]
    assert (board.rank_of("b"), board.rank_of("c"), board.rank_of("d")) == (2, 2, 4)
    # A page that starts inside the tie gives its first row the tie's rank.
    assert [(rank, rule) for rank, rule, _ in board.page(2, 2)] == [(2, "tie"), (4, "total_points")]
    # The rank changes say so too: d climbs level with b and c, so nobody else moves.
    change = board.apply_result(
        MatchResult("s", "m3", 1, 3, "2026-01-01T12:00:00Z", (LobbyRow("d", 3), LobbyRow("e", 4)))
    )
    assert [(c.team_id, c.old_rank, c.new_rank) for c in change.rank_changes] == [("d", 4, 2), ("e", None, 5)]


def test_averages_are_compared_exactly():
    rules = RuleSet(PointTable((0,)), kill_points=0, tiebreakers=("total_points", "average_kills"))
    rows = [
        # a: 7 kills in 3 games (7/3); b: 14 in 6 (7/3) — level; c: 7 in 2 (3.5) — ahead.
        ("a", [3, 2, 2, None, None, None]),
        ("b", [3, 2, 2, 3, 2, 2]),
        ("c", [4, 3, None, None, None, None]),
    ]
    results = [
        MatchResult(
            "s",
            f"m{g}",
            1,
            g,
            "2026-01-01T10:00:00Z",
            tuple(LobbyRow(t, i + 1, kills[g - 1]) for i, (t, kills) in enumerate(rows) if kills[g - 1] is not None),
        )
        for g in range(1, 7)
    ]
    standings = recompute(rules, results)
    assert [(rank, s.team_id) for rank, _, s in ranked(standings, rules.tiebreakers)] == [(1, "c"), (2, "a"), (2, "b")]
    assert standings[1].average_kills == Fraction(7, 3)


def test_time_alive_counts_where_reported():
    rules = RuleSet(PointTable((1,)), tiebreakers=("total_points", "average_time_alive", "time_alive"))
    results = [
        MatchResult("s", "m1", 1, 1, "2026-01-01T10:00:00Z", (LobbyRow("a", 2, 0, 600), LobbyRow("b", 3, 0, 900))),
        MatchResult("s", "m2", 1, 2, "2026-01-01T11:00:00Z", (LobbyRow("a", 2, 0, 1000), LobbyRow("b", 3, 0))),
    ]
    a, b = recompute(rules, results)
    assert (a.team_id, a.average_time_alive, b.average_time_alive) == ("b", 900, 800)
    assert (b.time_alive_s, b.timed_matches) == (1600, 2)


@pytest.mark.parametrize(
    ("point_table", "message"),
    [
        ({"cumulative_tiers": []}, "at least 1|empty"),
        ({"cumulative_tiers": [[1, 5], [1, 3]]}, "twice"),
        ({"cumulative_tiers": [[0, 5]]}, "greater than or equal to 1|at least 1"),
        ({"tiers": [[1, 5]]}, "cumulative_tiers"),
    ],
)
def test_bad_tiers_are_refused_at_the_edge_with_the_reason(point_table, message):
    with pytest.raises(ValueError, match=message):
        BattleRoyaleRules(point_table=point_table)
