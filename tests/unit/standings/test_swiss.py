"""Swiss stages: the Counter-Strike Major's pairing and ranking, checked against a real Major, and the properties
that make folding safe (any order, duplicates and corrections give the from-scratch standings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crownstream.standings.series import SeriesResult
from crownstream.standings.swiss import (
    Pairing,
    PriorStage,
    Round,
    SwissRules,
    SwissStage,
    pair_round,
    recompute,
    rules_from_dict,
)

DATA = Path(__file__).parent / "data"


def _austin() -> dict:
    return json.loads((DATA / "swiss_cs2_austin_major_2025.json").read_text(encoding="utf-8"))


def _won(series_id: str, a: str, b: str, best_of: int, winner: str) -> SeriesResult:
    k = best_of // 2 + 1
    return SeriesResult(series_id, a, b, best_of, "completed", k if winner == a else 0, k if winner == b else 0, winner)


def _play_stage(stage_data: dict, stage_id: str) -> tuple[SwissStage, list[str]]:
    """Let the pipeline pair every round from the results so far, play the real match of each pairing, and
    report every round whose pairings or best-of differ from what was played."""
    stage = SwissStage(stage_id, {team: i for i, team in enumerate(stage_data["seeds"], start=1)})
    differences = []
    for number, played in enumerate(stage_data["rounds"], start=1):
        announced = stage.next_round()
        assert announced is not None, f"{stage_id}: round {number} was not paired"
        generated = {frozenset((p.team_a, p.team_b)): p for p in announced.pairings}
        real = {frozenset((a, b)): (bo, winner) for a, b, bo, winner in played}
        if set(generated) != set(real) or any(generated[k].best_of != real[k][0] for k in real):
            differences.append(f"{stage_id} round {number}")
        stage.set_round(announced)
        for key, pairing in generated.items():
            if key in real:
                stage.update(_won(pairing.series_id, pairing.team_a, pairing.team_b, pairing.best_of, real[key][1]))
    return stage, differences


def test_the_pipeline_pairs_every_round_of_the_austin_major_as_it_was_played():
    # 3 stages x 5 rounds x 16 teams: round 1 by seed, rounds 2-3 highest against lowest without a rematch, rounds
    # 4-5 by the priority table; rematch avoidance changes six of the rounds, so a wrong rule shows here.
    data = _austin()
    differences = []
    for n, stage_data in enumerate(data["stages"], start=1):
        stage, diff = _play_stage(stage_data, f"stage-{n}")
        differences += diff
        assert stage.next_round() is None  # every team has advanced or is out
    assert differences == []


def test_the_austin_major_standings_reproduce_every_published_line_and_the_next_stages_seeds():
    data = _austin()
    stages = [_play_stage(stage_data, f"stage-{n}")[0] for n, stage_data in enumerate(data["stages"], start=1)]
    for n, (stage, stage_data) in enumerate(zip(stages, data["stages"], strict=True), start=1):
        rows = stage.standings()
        by_team = {r.team_id: r for r in rows}
        published = stage_data["published_eliminated_and_top"]
        for line in published:
            row = by_team[line["team"]]
            assert (f"{row.wins}-{row.losses}", row.difficulty) == (line["record"], line["difficulty"]), line["team"]
        # The published lines in the rulebook's order are in our order too (Stage 3: its four 3-x teams that lost the
        # quarter-finals and its eight eliminated teams; Stages 1-2: the eight eliminated teams).
        order = [r.team_id for r in rows]
        listed = [line["team"] for line in published]
        assert sorted(listed, key=order.index) == listed
        assert [r.rank for r in rows] == list(range(1, 17))  # the seed decides every tie left: no shared rank
        assert sum(r.status == "advanced" for r in rows) == 8 and sum(r.status == "eliminated" for r in rows) == 8
        if n < 3:
            # The advancing teams' order is the next stage's seeds 9-16, and that stage's round 1 was played so.
            assert order[:8] == data["stages"][n]["seeds"][8:]
    flyquest, nrg = (r for r in stages[0].standings() if r.team_id in ("flyquest", "nrg"))
    # Published: both 2-3 with difficulty 5, FlyQuest ahead by initial seed.
    assert (flyquest.rank, nrg.rank, nrg.decided_by) == (9, 10, "initial_seed")


def test_difficulty_is_the_sum_of_opponents_current_wins_minus_losses():
    stage = SwissStage("s", {"a": 1, "b": 2, "c": 3, "d": 4})
    stage.update(_won("m1", "a", "c", 1, "a"))
    stage.update(_won("m2", "b", "d", 1, "b"))
    stage.update(_won("m3", "a", "b", 3, "b"))
    # a met c (0-1) and b (2-0): -1 + 2 = 1; b met d (0-1) and a (1-1): -1 + 0; c met a (1-1): 0; d met b: 2.
    assert stage.difficulty() == {"a": 1, "b": -1, "c": 0, "d": 2}


def test_rounds_two_and_three_avoid_a_rematch_and_backtrack_when_the_greedy_choice_strands_a_pair():
    seeds = {t: i for i, t in enumerate("abcd", start=1)}
    records = dict.fromkeys(seeds, (1, 0))
    difficulty = dict.fromkeys(seeds, 0)
    # a-d already met: a takes the lowest it has not met (c), leaving b-d.
    assert pair_round(2, seeds, records, difficulty, seeds, {frozenset("ad")}, SwissRules()) == [("a", "c"), ("b", "d")]
    # a met d and c: a-b; then c-d.
    met = {frozenset("ad"), frozenset("ac")}
    assert pair_round(2, seeds, records, difficulty, seeds, met, SwissRules()) == [("a", "b"), ("c", "d")]
    # a-d, b-c, a-c and b-d all met: only a-b/c-d remains; with every pairing a rematch, rematches are allowed.
    met = {frozenset(p) for p in ("ad", "bc", "ac", "bd")}
    assert pair_round(2, seeds, records, difficulty, seeds, met, SwissRules()) == [("a", "b"), ("c", "d")]
    met |= {frozenset("ab"), frozenset("cd")}
    assert pair_round(2, seeds, records, difficulty, seeds, met, SwissRules()) == [("a", "d"), ("b", "c")]


def test_later_rounds_take_the_first_row_of_the_priority_table_without_a_rematch():
    seeds = {t: i for i, t in enumerate("abcdef", start=1)}
    records = dict.fromkeys(seeds, (2, 1))
    difficulty = dict.fromkeys(seeds, 0)
    assert pair_round(4, seeds, records, difficulty, seeds, set(), SwissRules()) == [("a", "f"), ("b", "e"), ("c", "d")]
    # Row 1 has b-e: row 2 (1v6, 2v4, 3v5).
    assert pair_round(4, seeds, records, difficulty, seeds, {frozenset("be")}, SwissRules()) == [
        ("a", "f"),
        ("b", "d"),
        ("c", "e"),
    ]
    # b met d and e: highest-against-lowest would give a-f, b-c, d-e (row 7); the table's first clean row is row 3.
    assert pair_round(4, seeds, records, difficulty, seeds, {frozenset("bd"), frozenset("be")}, SwissRules()) == [
        ("a", "e"),
        ("b", "f"),
        ("c", "d"),
    ]


def test_a_pool_is_ordered_by_difficulty_then_seed_and_an_odd_pool_floats_its_lowest_seed_down():
    seeds = {t: i for i, t in enumerate("abcdef", start=1)}
    records = {"a": (1, 0), "b": (1, 0), "c": (1, 0), "d": (0, 1), "e": (0, 1), "f": (0, 1)}
    difficulty = {"a": -1, "b": 1, "c": 0, "d": 0, "e": 0, "f": 0}
    # 1-0 pool by difficulty: b, c, a — a (the lowest) floats to the 0-1 pool, which it tops.
    assert pair_round(2, seeds, records, difficulty, seeds, set(), SwissRules()) == [("b", "c"), ("a", "f"), ("d", "e")]


def test_a_match_that_can_advance_or_eliminate_is_the_decisive_format():
    rules = SwissRules()
    assert rules.best_of((1, 1), (1, 1)) == 1
    assert rules.best_of((2, 0), (2, 1)) == 3  # either can reach three wins
    assert rules.best_of((1, 2), (0, 2)) == 3  # either can reach three losses
    assert rules.best_of((2, 2), (2, 2)) == 3


def test_announced_rounds_are_facts_a_correction_never_repairs_them_and_staff_may_replace_them():
    stage = SwissStage("s", {t: i for i, t in enumerate("abcd", start=1)})
    first = stage.next_round()
    assert [(p.team_a, p.team_b) for p in first.pairings] == [("a", "c"), ("b", "d")]
    stage.set_round(first)
    assert stage.next_round() is None  # round 1 not played yet
    stage.update(_won("s-r1-m1", "a", "c", 1, "a"))
    stage.update(_won("s-r1-m2", "b", "d", 1, "d"))
    second = stage.next_round()
    stage.set_round(second)
    # A correction of round 1 changes records but not the announced round 2; a second generated round 2 is ignored.
    stage.update(_won("s-r1-m2", "b", "d", 1, "b"))
    stage.set_round(Round(2, (Pairing("x", "a", "d", 1),)))
    assert stage.rounds[2] == second
    staff = Round(2, (Pairing("s-r2-a", "a", "b", 1), Pairing("s-r2-b", "c", "d", 1)), source="staff")
    stage.set_round(staff)
    assert stage.rounds[2] == staff
    with pytest.raises(ValueError, match="pairs 'a' twice"):
        stage.set_round(Round(3, (Pairing("y", "a", "b", 1), Pairing("z", "a", "c", 1)), source="staff"))
    with pytest.raises(ValueError, match="not seeded"):
        stage.update(_won("q", "a", "zz", 1, "a"))


def test_prior_stages_break_a_tie_left_by_record_and_difficulty_before_the_seed():
    stage = SwissStage(
        "s3",
        {"a": 1, "b": 2},
        prior_stages={"a": (PriorStage(3, 2, 0),), "b": (PriorStage(3, 1, -4),)},
    )
    rows = stage.standings()
    assert [(r.team_id, r.decided_by) for r in rows] == [("b", ""), ("a", "prior_stages")]


def test_teams_no_rule_separates_share_a_rank_and_say_so():
    rules = SwissRules(ranking=("record", "difficulty"))
    stage = SwissStage("s", {"a": 1, "b": 2, "c": 3, "d": 4}, rules)
    stage.update(_won("m1", "a", "c", 1, "a"))
    stage.update(_won("m2", "b", "d", 1, "b"))
    rows = stage.standings()
    assert [(r.rank, r.team_id, r.decided_by) for r in rows] == [
        (1, "a", ""),
        (1, "b", "tie"),
        (3, "c", "record"),
        (3, "d", "tie"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "swiss"}, 'need "seeds"'),
        ({"seeds": {"a": 1, "b": 3}}, "seeds must be 1..2"),
        ({"seeds": {"a": 1, "b": 2}, "ranking": ["difficulty"]}, "start with 'record'"),
        ({"seeds": {"a": 1, "b": 2}, "decisive_best_of": 4}, "best"),
        ({"seeds": {"a": 1, "b": 2}, "pairing": "x"}, "unknown field"),
    ],
)
def test_rules_errors_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        rules, seeds, prior = rules_from_dict(data)
        SwissStage("s", seeds, rules, prior)


def test_state_round_trips_through_plain_json():
    stage, _ = _play_stage(_austin()["stages"][2], "stage-3")
    again = SwissStage.from_dict(json.loads(json.dumps(stage.to_dict())))
    assert again.standings() == stage.standings()
    assert again.rounds == stage.rounds


TEAMS = [f"t{i}" for i in range(1, 9)]


@st.composite
def swiss_histories(draw):
    """Results of an 8-team stage, each series reported 1-3 times (corrections flip the winner), shuffled."""
    n = draw(st.integers(1, 10))
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(TEAMS), st.sampled_from(TEAMS)).filter(lambda p: p[0] != p[1]),
            min_size=n,
            max_size=n,
        )
    )
    reports = []
    final = {}
    for i, (a, b) in enumerate(pairs):
        versions = draw(st.lists(st.sampled_from([a, b, None]), min_size=1, max_size=3))
        for winner in versions:
            r = (
                _won(f"m{i}", a, b, 1, winner)
                if winner is not None
                else SeriesResult(f"m{i}", a, b, 1, "in_progress", 0, 0)
            )
            reports.append(r)
            final[f"m{i}"] = r
    order = draw(st.permutations(range(len(reports))))
    return reports, final, order


@settings(max_examples=200, deadline=None)
@given(swiss_histories())
def test_folding_in_any_order_with_duplicates_and_corrections_equals_the_recompute(history):
    reports, final, order = history
    stage = SwissStage("s", {t: i for i, t in enumerate(TEAMS, start=1)})
    # Arrival order is shuffled, but a series' own reports keep their order (a correction follows what it corrects).
    by_series: dict[str, list[SeriesResult]] = {}
    for r in reports:
        by_series.setdefault(r.series_id, []).append(r)
    cursors = dict.fromkeys(by_series, 0)
    for i in order:
        sid = reports[i].series_id
        if cursors[sid] < len(by_series[sid]):
            stage.update(by_series[sid][cursors[sid]])
            stage.update(by_series[sid][cursors[sid]])  # a duplicate changes nothing
            cursors[sid] += 1
    for sid, versions in by_series.items():
        for r in versions[cursors[sid] :]:
            stage.update(r)
    assert stage.standings() == recompute("s", {t: i for i, t in enumerate(TEAMS, start=1)}, final.values())
