"""``crownstream standings rebuild``'s pure part: a tournament's standings from its raw events, and the
comparison with what a worker serves (crownstream/ops.py)."""

from __future__ import annotations

from crownstream.demo.tournament import demo_tournament
from crownstream.ops import compare, recompute_tournament
from crownstream.standings.battle_royale import Leaderboard
from crownstream.standings.br_inputs import MatchResult, Override
from crownstream.standings.rules import RuleSet


def streamed(events: list[dict], tournament_id: str) -> list[tuple[str, int]]:
    """The streaming engine's answer (the incremental Leaderboard the agent uses), as a second opinion."""
    from crownstream.schemas.codec import validate

    board = None
    for e in map(validate, (e for e in events if e.get("tournament_id") == tournament_id)):
        if e.type == "stage.configured" and e.stage_id == "br-finals":
            board = Leaderboard(RuleSet.from_dict(e.rules.model_dump(mode="json")), "br-finals")
        elif e.type == "match.completed" and e.stage_id == "br-finals":
            board.apply_result(MatchResult.from_event(e))
        elif e.type == "result.overridden" and e.team_id:
            board.apply_override(Override.from_event(e))
    return [(s.team_id, s.total_points) for _, s in board.standings()]


def test_recompute_of_the_demo_agrees_with_the_streaming_engine():
    events = demo_tournament("cup", seed=5, br_matches=6) + demo_tournament("other", seed=6, br_matches=2)
    stages = recompute_tournament(events, "cup")
    assert set(stages) == {"br-finals"}  # the series group has no battle-royale table
    result = stages["br-finals"]
    assert result.matches == 6 and len(result.standings) == 16
    assert [(s.team_id, s.total_points) for s in result.standings] == streamed(events, "cup")


def test_invalid_events_are_skipped_and_reported():
    events = demo_tournament("cup", seed=5, br_matches=2)
    events.insert(5, {"type": "match.completed", "event_id": "bad-1", "tournament_id": "cup", "schema_version": 1})
    result = recompute_tournament(events, "cup")["br-finals"]
    assert result.matches == 2
    assert len(result.skipped) == 1 and result.skipped[0].startswith("bad-1:")


def test_compare_reports_each_difference():
    standings = recompute_tournament(demo_tournament("cup", seed=5, br_matches=3), "cup")["br-finals"].standings
    served = [{"team_id": s.team_id, "total_points": s.total_points} for s in standings]
    assert compare(standings, served) == []
    served[0], served[1] = served[1], served[0]
    served.pop()
    problems = compare(standings, served)
    assert problems[0].startswith("rank 1: recompute ") and problems[1].startswith("rank 2:")
    assert problems[-1] == f"recompute ranks {len(standings)} teams, the worker {len(standings) - 1}"
    assert compare(standings, None) == ["the worker has no standings for this stage"]
