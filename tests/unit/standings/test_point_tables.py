"""Point tables and rule sets: every published table, custom tables, the dict form that travels in events."""

from __future__ import annotations

import json

import pytest

from crownstream.schemas.events import BattleRoyaleRules
from crownstream.standings.point_tables import ALGS, FREE_FIRE, NAMED_TABLES, PUBGM_2020, PUBGM_2023, PointTable
from crownstream.standings.rules import RuleSet
from crownstream.standings.tiebreakers import DEFAULT_TIEBREAKERS, TIEBREAKERS

# Placement 1, 2, 3, … as the organisers publish them, padded with the zeros that follow.
PUBLISHED = [
    ("pubgm_2023", PUBGM_2023, [10, 6, 5, 4, 3, 2, 1, 1] + [0] * 8),
    ("pubgm_2020", PUBGM_2020, [15, 12, 10, 8, 6, 4, 2, 1, 1, 1, 1, 1] + [0] * 4),
    ("free_fire", FREE_FIRE, [12, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]),
    ("algs", ALGS, [12, 9, 7, 5, 4, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1] + [0] * 5),
]


@pytest.mark.parametrize(("name", "constant", "expected"), PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_published_table(name, constant, expected):
    table = PointTable.named(name)
    assert table.points == constant
    assert [table.points_for(p) for p in range(1, len(expected) + 1)] == expected
    # A lobby bigger than the table: every placement past its end scores 0.
    assert table.points_for(100) == 0
    rules = RuleSet.named(name)
    assert [rules.placement_score(p) for p in range(1, len(expected) + 1)] == expected
    assert rules.kill_score(7) == 7  # every published table scores 1 point a kill


def test_registry_names_every_published_table_and_cannot_be_changed():
    assert set(NAMED_TABLES) == {p[0] for p in PUBLISHED}
    with pytest.raises(TypeError):
        NAMED_TABLES["pubgm_2023"] = (99,)  # type: ignore[index]  # the refusal is what is tested


def test_custom_table_with_kill_points_and_cap():
    rules = RuleSet.from_dict({"point_table": [20, 10, 5], "kill_points": 2, "kill_cap": 5})
    assert [rules.placement_score(p) for p in (1, 2, 3, 4)] == [20, 10, 5, 0]
    assert rules.table.name is None
    assert rules.kill_score(0) == 0
    assert rules.kill_score(3) == 6
    assert rules.kill_score(5) == 10
    assert rules.kill_score(9) == 10  # capped at 5 kills


def test_zero_points_per_kill_is_a_placement_only_stage():
    rules = RuleSet.named("algs", kill_points=0)
    assert rules.kill_score(12) == 0


def test_placement_must_be_positive():
    with pytest.raises(ValueError, match="placement must be 1 or more"):
        PointTable.named("algs").points_for(0)


@pytest.mark.parametrize(
    "rules",
    [
        RuleSet.named("pubgm_2023"),
        RuleSet.named(
            "free_fire", tiebreakers=("total_points", "wins", "last_match_placement"), match_point_threshold=80
        ),
        RuleSet.named("algs", kill_cap=6, starting_points={"t1": 10, "t2": -3}, match_point_threshold=50),
        RuleSet.from_dict({"point_table": [5, 3, 1], "kill_points": 0}),
    ],
    ids=["named", "champion-rush", "carried-points", "custom"],
)
def test_rules_round_trip_through_json_and_the_event_contract(rules):
    data = json.loads(json.dumps(rules.to_dict()))
    assert RuleSet.from_dict(data) == rules
    # The dict is exactly what a stage.configured event carries.
    event_rules = BattleRoyaleRules.model_validate(data)
    assert RuleSet.from_dict(event_rules.model_dump(mode="json")) == rules


def test_named_table_serialises_by_name_and_custom_table_as_list():
    assert RuleSet.named("algs").to_dict()["point_table"] == "algs"
    assert RuleSet.from_dict({"point_table": [3, 2, 1]}).to_dict()["point_table"] == [3, 2, 1]


def test_defaults():
    rules = RuleSet.from_dict({"point_table": "pubgm_2023"})
    assert rules.kill_points == 1
    assert rules.kill_cap is None
    assert rules.tiebreakers == DEFAULT_TIEBREAKERS
    assert DEFAULT_TIEBREAKERS == ("total_points", "kills", "best_placement", "earliest_completion")
    assert rules.match_point_threshold is None
    assert rules.starting("anyone") == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"point_table": "pubg_2099"}, r"unknown point table 'pubg_2099'.*algs"),
        ({"point_table": [10, -1]}, r"point_table\[1\] \(placement 2\) is -1: placement points must not be negative"),
        ({"point_table": []}, "point_table is empty"),
        ({"point_table": [10, "6"]}, r"point_table\[1\] must be an integer"),
        ({"point_table": 10}, "point_table must be a table name, a list of integers or"),
        ({}, "rules need a point_table"),
        ({"point_table": "algs", "kill_points": -1}, "kill_points must be at least 0, got -1"),
        ({"point_table": "algs", "kill_points": True}, "kill_points must be an integer"),
        ({"point_table": "algs", "kill_cap": -2}, "kill_cap must be at least 0"),
        ({"point_table": "algs", "tiebreakers": ["total_points", "vibes"]}, "unknown tiebreaker 'vibes'"),
        ({"point_table": "algs", "tiebreakers": []}, "tiebreakers is empty"),
        ({"point_table": "algs", "tiebreakers": ["kills", "kills"]}, r"\['kills'\] listed twice"),
        ({"point_table": "algs", "tiebreakers": "kills"}, "tiebreakers must be a list"),
        ({"point_table": "algs", "match_point_threshold": 0}, "match_point_threshold must be at least 1"),
        ({"point_table": "algs", "starting_points": {"t1": 1.5}}, r"starting_points\['t1'\] must be an integer"),
        ({"point_table": "algs", "starting_points": [1]}, "starting_points must be an object"),
        ({"point_table": "algs", "kill_point": 2}, r"unknown rules field\(s\) \['kill_point'\]"),
        ({"format": "series_group", "point_table": "algs"}, "not a battle-royale stage"),
    ],
)
def test_bad_rules_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        RuleSet.from_dict(data)


def test_rules_are_read_only():
    rules = RuleSet.named("algs", starting_points={"t1": 4})
    with pytest.raises(TypeError):
        rules.starting_points["t1"] = 40  # type: ignore[index]  # the refusal is what is tested
    with pytest.raises(AttributeError):
        rules.kill_points = 3  # type: ignore[misc]  # the refusal is what is tested


def test_a_table_name_must_match_its_points():
    with pytest.raises(ValueError, match="does not match"):
        PointTable((1, 2, 3), name="algs")


def test_every_tiebreaker_is_accepted():
    rules = RuleSet.named("algs", tiebreakers=TIEBREAKERS)
    assert RuleSet.from_dict(rules.to_dict()).tiebreakers == TIEBREAKERS
