"""``crownstream standings rebuild`` for series stages (crownstream/ops_series.py): the from-scratch recompute of
a round-robin group and a Swiss stage equals what the series agent serves after folding the same events, the
pipeline's own round announcements included, in topic order."""

from __future__ import annotations

import json

import orjson

from crownstream.agents import series as series_agent
from crownstream.demo.tournament import SWISS_STAGE, demo_tournament
from crownstream.ops_series import compare_series, recompute_series_stages
from crownstream.streams.topics import TOURNAMENT_EVENTS
from tests.unit.agents.handler_harness import Harness, run

TOURNAMENT = TOURNAMENT_EVENTS.full_name()


def _stream(events: list[dict]) -> tuple[list[dict], dict[str, list[dict]]]:
    """Feed the events through the agents as the topic would deliver them (each announcement the pipeline makes
    right after the record that caused it), and return the topic's records and the rows each stage serves."""

    async def go():
        topic: list[dict] = []
        served: dict[str, list[dict]] = {}
        with Harness() as h:
            pending = [json.dumps(e).encode() for e in events]
            while pending:
                value = pending.pop(0)
                topic.append(orjson.loads(value))
                seen = len(h.announced)
                await h.feed(TOURNAMENT, value)
                pending[0:0] = h.announced[seen:]
            swiss = series_agent.swiss_for("cup", SWISS_STAGE)
            group = series_agent.group_for("cup", "group-a")
            served[SWISS_STAGE] = [r.to_dict() for r in swiss.standings()]
            served["group-a"] = [r.to_dict() for r in group.standings()]
        return topic, served

    return run(go())


def test_the_recompute_of_a_swiss_stage_and_a_group_equals_what_the_agent_serves():
    topic, served = _stream(demo_tournament("cup", seed=5, br_matches=1, swiss=True))
    announced = [e for e in topic if e["type"] == "round.paired"]
    assert [e["round"] for e in announced] == [1, 2, 3]  # 8 teams, two wins or two losses: three rounds
    stages = recompute_series_stages(topic, "cup")
    assert set(stages) == {"group-a", SWISS_STAGE}
    for stage_id, result in stages.items():
        assert result.skipped == []
        assert compare_series(result, served[stage_id]) == [], stage_id
    swiss = stages[SWISS_STAGE]
    assert swiss.series == 10 and sorted(r["status"] for r in swiss.rows) == ["advanced"] * 4 + ["eliminated"] * 4
    # A decisive match is a best-of-3 from its announced pairing: some series took more than one game.
    assert any(e["result"]["game_number"] > 1 for e in topic if e.get("stage_id") == SWISS_STAGE and "result" in e)


def test_a_difference_is_reported_row_by_row():
    topic, served = _stream(demo_tournament("cup", seed=5, br_matches=1, swiss=True))
    result = recompute_series_stages(topic, "cup")[SWISS_STAGE]
    swapped = [served[SWISS_STAGE][1], served[SWISS_STAGE][0], *served[SWISS_STAGE][2:]]
    problems = compare_series(result, swapped)
    assert len(problems) == 2 and problems[0].startswith("row 1: recompute #1")
    assert compare_series(result, None) == ["the worker has no standings for this stage"]
    assert "recompute has 8 teams, the worker 7" in compare_series(result, served[SWISS_STAGE][:7])


def test_a_round_whose_announcement_is_not_committed_yet_is_paired_as_the_pipeline_pairs_it():
    # The workers serve round 3's results as soon as they apply them; the round's round.paired record commits with
    # the transaction that completed round 2, a moment later. A rebuild reading the topic in between must not score
    # round 3's best-of-3 series as best-of-1.
    topic, served = _stream(demo_tournament("cup", seed=3, br_matches=1, swiss=True))
    without_round_3 = [e for e in topic if not (e["type"] == "round.paired" and e["round"] == 3)]
    result = recompute_series_stages(without_round_3, "cup")[SWISS_STAGE]
    assert compare_series(result, served[SWISS_STAGE]) == []
    third = next(e for e in topic if e["type"] == "round.paired" and e["round"] == 3)
    assert {p["best_of"] for p in third["pairings"]} == {3}  # the case the test is about
