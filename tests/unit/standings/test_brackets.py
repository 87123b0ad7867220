"""Elimination formats: GSL groups, single and double elimination, grand-final reset — checked against real
events (who played each match follows from the bracket, every published place is reproduced) and the
properties that make folding safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crownstream.standings.brackets import (
    Bracket,
    Slot,
    Source,
    double_elimination,
    double_elimination_8,
    gsl_group,
    recompute,
    single_elimination,
    slots_from_dict,
    standard_seed_order,
)
from crownstream.standings.series import SeriesResult

DATA = Path(__file__).parent / "data"


def _events() -> dict[str, dict]:
    data = json.loads((DATA / "elimination_events.json").read_text(encoding="utf-8"))
    return {e["event"]: e for e in data["events"]}


def _result(bracket: Bracket, slot_id: str, a: str, b: str, best_of: int, winner: str) -> SeriesResult:
    k = best_of // 2 + 1
    series_id = f"{bracket.stage_id}-{slot_id}"
    return SeriesResult(series_id, a, b, best_of, "completed", k if winner == a else 0, k if winner == b else 0, winner)


def _play(stage_id: str, seeds: list[str], slots, matches) -> Bracket:
    """Fold the real results in, checking before each one that the bracket had put exactly these two teams in the
    slot (so advancement, drops to the lower bracket and the crossover are all what happened)."""
    bracket = Bracket(stage_id, {t: i for i, t in enumerate(seeds, start=1)}, slots)
    for slot_id, a, b, best_of, winner in matches:
        state = next(s for s in bracket.states() if s.slot.id == slot_id)
        assert state.status == "ready", (stage_id, slot_id, state)
        assert {state.team_a, state.team_b} == {a, b}, (stage_id, slot_id, state)
        assert state.slot.best_of == best_of, (stage_id, slot_id)
        bracket.update(_result(bracket, slot_id, a, b, best_of, winner))
    return bracket


def _places(bracket: Bracket) -> list[list[str]]:
    return sorted([row.place, row.team_id] for row in bracket.standings())


def test_gsl_groups_of_valorant_champions_2023_reproduce_every_group_place():
    event = _events()["VALORANT Champions 2023 (Los Angeles) — Group Stage"]
    for group in event["groups"]:
        bracket = _play(f"group-{group['group']}", group["seeds"], gsl_group(), group["matches"])
        assert _places(bracket) == sorted(group["published"]), group["group"]
        assert bracket.ready_matches() == []
    assert len(event["groups"]) == 4


def test_gsl_groups_without_a_decider_blast_world_final_2022_share_second_and_third():
    event = _events()["BLAST Premier: World Final 2022 (Abu Dhabi, 14-18 Dec 2022) — Group Stage"]
    for group in event["groups"]:
        bracket = _play(f"group-{group['group']}", group["seeds"], gsl_group(decider=False), group["matches"])
        assert _places(bracket) == sorted(group["published"]), group["group"]
        rows = bracket.standings()
        assert [r.rank for r in rows] == [1, 2, 2, 4]
        assert [r.decided_by for r in rows] == ["", "placement", "tie", "placement"]


def test_double_elimination_valorant_champions_2023_playoffs_crossover_and_places():
    event = _events()["VALORANT Champions 2023 (Los Angeles) — Playoffs"]
    # Every match's two teams come from the bracket, including the lower round 2 crossover (LOUD v EDG, DRX v FNC).
    bracket = _play("playoffs", event["seeds"], double_elimination_8(), event["matches"])
    assert _places(bracket) == sorted(event["published"])
    assert [(r.rank, r.team_id) for r in bracket.standings()][:4] == [(1, "eg"), (2, "prx"), (3, "loud"), (4, "fnc")]


def test_a_grand_final_reset_is_played_only_when_the_lower_bracket_side_wins_evo_2019():
    event = _events()["EVO 2019 — Super Smash Bros. Ultimate Singles, Top 8 (Las Vegas, 4 Aug 2019)"]
    s = Source
    slots = [
        Slot("ub_sf1", s("seed", "1"), s("seed", "2"), 3),
        Slot("ub_sf2", s("seed", "3"), s("seed", "4"), 3),
        Slot("lb_r1_m1", s("seed", "5"), s("seed", "6"), 3, "7"),
        Slot("lb_r1_m2", s("seed", "7"), s("seed", "8"), 3, "7"),
        Slot("ub_final", s("winner", "ub_sf2"), s("winner", "ub_sf1"), 5),
        Slot("lb_qf1", s("loser", "ub_sf2"), s("winner", "lb_r1_m1"), 3, "5"),
        Slot("lb_qf2", s("winner", "lb_r1_m2"), s("loser", "ub_sf1"), 3, "5"),
        Slot("lb_sf", s("winner", "lb_qf2"), s("winner", "lb_qf1"), 3, "4"),
        Slot("lb_final", s("winner", "lb_sf"), s("loser", "ub_final"), 5, "3"),
        Slot("grand_final", s("winner", "ub_final"), s("winner", "lb_final"), 5, "2", "1"),
        Slot("grand_final_reset", s("winner", "grand_final"), s("loser", "grand_final"), 5, "2", "1", "grand_final"),
    ]
    before = event["matches"][:-1]  # all but the reset
    bracket = _play("top8", event["seeds"], slots, before)
    # MkLeo (lower side) won the first grand final: nobody is placed 1st or 2nd yet, the reset is ready.
    assert {r.team_id for r in bracket.standings() if r.status == "alive"} == {"tweek", "mkleo"}
    assert [s.slot.id for s in bracket.ready_matches()] == ["grand_final_reset"]
    bracket = _play("top8", event["seeds"], slots, event["matches"])
    assert _places(bracket) == sorted(event["published"])
    # Had the upper side won the grand final, no reset: a correction to that result takes the reset away.
    bracket.update(_result(bracket, "grand_final", "tweek", "mkleo", 5, "tweek"))
    reset_state = next(s for s in bracket.states() if s.slot.id == "grand_final_reset")
    assert reset_state.status == "not_played"
    assert dict((t, p) for p, t in _places(bracket))["tweek"] == "1"


def test_single_elimination_with_byes_for_the_top_seeds_blast_world_final_2022_playoffs():
    event = _events()["BLAST Premier: World Final 2022 — Playoffs"]
    slots = single_elimination(6)
    bracket = _play("playoffs", event["seeds"], slots, event["matches"])
    assert _places(bracket) == sorted(event["published"])
    byes = [s for s in bracket.states() if s.status == "bye"]
    assert sorted(s.winner for s in byes) == ["faze", "og"]


def test_standard_seed_order_meets_the_top_seeds_as_late_as_possible():
    assert standard_seed_order(8) == [1, 8, 4, 5, 2, 7, 3, 6]
    assert standard_seed_order(16)[:4] == [1, 16, 8, 9]
    places = [s.loser_place for s in single_elimination(16)]
    assert places.count("9-16") == 8 and places.count("5-8") == 4 and places.count("3-4") == 2
    third = single_elimination(4, third_place=True)
    assert [(s.id, s.loser_place, s.winner_place) for s in third] == [
        ("r1_m1", None, None),
        ("r1_m2", None, None),
        ("final", "2", "1"),
        ("third_place", "4", "3"),
    ]


def test_a_correction_upstream_turns_a_result_that_no_longer_fits_into_a_conflict():
    bracket = Bracket("s", {t: i for i, t in enumerate("abcd", start=1)}, single_elimination(4))
    bracket.update(_result(bracket, "r1_m1", "a", "d", 3, "a"))
    bracket.update(_result(bracket, "r1_m2", "b", "c", 3, "b"))
    bracket.update(_result(bracket, "final", "a", "b", 3, "a"))
    assert _places(bracket)[:2] == [["1", "a"], ["2", "b"]]
    bracket.update(_result(bracket, "r1_m1", "a", "d", 3, "d"))  # the semi-final was scored wrongly
    assert bracket.conflicts() == ["s-final"]
    assert {r.team_id: r.status for r in bracket.standings()} == {
        "b": "alive",
        "d": "alive",
        "a": "placed",
        "c": "placed",
    }


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ([Slot("x", Source("seed", "1"), Source("winner", "y"))], "not an earlier slot"),
        (
            [Slot("x", Source("seed", "1"), Source("seed", "2")), Slot("x", Source("seed", "3"), Source("seed", "4"))],
            "twice",
        ),
        (
            [
                Slot("x", Source("seed", "1"), Source("seed", "2")),
                Slot("y", Source("winner", "x"), Source("seed", "3")),
                Slot("z", Source("winner", "x"), Source("seed", "4")),
            ],
            "sent to two slots",
        ),
        ([Slot("x", Source("seed", "1"), Source("seed", "2"), 3, "fifth")], "a place is a number"),
    ],
)
def test_a_bracket_that_cannot_be_played_is_refused_with_the_reason(slots, message):
    with pytest.raises(ValueError, match=message):
        Bracket("s", {"a": 1, "b": 2, "c": 3, "d": 4}, slots)


def test_bracket_rules_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="four teams"):
        slots_from_dict({"template": "gsl_group"}, 5)
    with pytest.raises(ValueError, match="unknown bracket template"):
        slots_from_dict({"template": "ladder"}, 4)
    with pytest.raises(ValueError, match='"seed:N"'):
        slots_from_dict({"template": "slots", "slots": [{"id": "x", "a": "top:1", "b": "seed:2"}]}, 2)


def test_state_round_trips_through_plain_json():
    event = _events()["VALORANT Champions 2023 (Los Angeles) — Playoffs"]
    bracket = _play("playoffs", event["seeds"], double_elimination_8(), event["matches"])
    again = Bracket.from_dict(json.loads(json.dumps(bracket.to_dict())))
    assert again.standings() == bracket.standings()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_folding_in_any_order_with_duplicates_and_corrections_equals_the_recompute(data):
    seeds = {t: i for i, t in enumerate("abcdefgh", start=1)}
    slots = double_elimination_8(best_of=1, finals_best_of=1, reset=True)
    bracket = Bracket("s", seeds, slots)
    reports: list[SeriesResult] = []
    # Play the bracket through, sometimes reporting a wrong winner first and correcting it.
    for _ in range(len(slots)):
        ready = bracket.ready_matches()
        if not ready:
            break
        state = data.draw(st.sampled_from(ready))
        for winner in data.draw(st.lists(st.sampled_from([state.team_a, state.team_b]), min_size=1, max_size=2)):
            r = _result(bracket, state.slot.id, state.team_a, state.team_b, 1, winner)
            reports.append(r)
            bracket.update(r)
    final = {r.series_id: r for r in reports}
    order = data.draw(st.permutations(reports))
    shuffled = Bracket("s", seeds, slots)
    for r in order:
        shuffled.update(r)
        shuffled.update(r)
    for r in final.values():  # the latest report of each series is what the platform says now
        shuffled.update(r)
    assert shuffled.standings() == recompute("s", seeds, slots, final.values()) == bracket.standings()


def test_the_general_double_elimination_plays_valorant_champions_2023_as_the_eight_team_template_does():
    event = _events()["VALORANT Champions 2023 (Los Angeles) — Playoffs"]
    names = {
        **{f"ub_qf{i}": f"ub_r1_m{i}" for i in range(1, 5)},
        "ub_sf1": "ub_r2_m1",
        "ub_sf2": "ub_r2_m2",
        "lb_r3": "lb_r3_m1",
    }
    matches = [[names.get(slot, slot), *rest] for slot, *rest in event["matches"]]
    bracket = _play("playoffs", event["seeds"], double_elimination(8), matches)
    assert _places(bracket) == sorted(event["published"])


def test_double_elimination_with_byes_and_a_reset_places_every_team_once():
    seeds = {t: i for i, t in enumerate("abcdef", start=1)}
    slots = double_elimination(6, best_of=1, finals_best_of=1, reset=True)
    bracket = Bracket("de", seeds, slots)
    # The better seed wins every match but the grand final, which the lower side (b) wins: the reset is played, and
    # a wins it.
    while ready := bracket.ready_matches():
        state = ready[0]
        better = min(state.team_a, state.team_b, key=seeds.__getitem__)
        winner = "b" if state.slot.id == "grand_final" else better
        bracket.update(_result(bracket, state.slot.id, state.team_a, state.team_b, 1, winner))
    places = dict((t, p) for p, t in _places(bracket))
    # Seeds 1 and 2 get byes in the first round; byes send nobody to the lower bracket.
    assert places == {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5-6", "f": "5-6"}
    assert next(s for s in bracket.states() if s.slot.id == "grand_final_reset").status == "completed"
    assert sum(s.status == "bye" for s in bracket.states()) == 4  # two upper, two lower
    assert all(s.status in ("completed", "bye") for s in bracket.states())
    with pytest.raises(ValueError, match="at least 4"):
        double_elimination(3)
