"""Best-of-N series: every format, bo2 draws, revisions, overrides, forfeits, games after the decision."""

from __future__ import annotations

import json
import re

import pytest

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


def series(best_of: int = 3, forfeit_score: str = "awarded") -> Series:
    return Series("s-1", A, B, SeriesFormat(best_of, forfeit_score))


def game(n: int, winner: str, rev: int = 1, score: dict | None = None) -> GameResult:
    return GameResult("s-1", n, winner, rev, score)


def override(event_id: str, n: int, winner: str, at: str = "2026-11-24T20:00:00Z") -> GameOverride:
    return GameOverride(event_id, "s-1", n, winner, "admin-7", "replay review", at)


def play(s: Series, *winners: str) -> None:
    for n, w in enumerate(winners, start=1):
        assert s.apply(game(n, w)).status == ChangeStatus.APPLIED


# --- every format ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("best_of", "winners", "status", "score", "winner"),
    [
        (1, [], SeriesStatus.SCHEDULED, (0, 0), None),
        (1, [A], SeriesStatus.COMPLETED, (1, 0), A),
        (1, [B], SeriesStatus.COMPLETED, (0, 1), B),
        (2, [A], SeriesStatus.IN_PROGRESS, (1, 0), None),
        (2, [A, A], SeriesStatus.COMPLETED, (2, 0), A),
        (2, [A, B], SeriesStatus.COMPLETED, (1, 1), None),  # a draw
        (2, [B, A], SeriesStatus.COMPLETED, (1, 1), None),
        (2, [B, B], SeriesStatus.COMPLETED, (0, 2), B),
        (3, [A], SeriesStatus.IN_PROGRESS, (1, 0), None),
        (3, [A, B], SeriesStatus.IN_PROGRESS, (1, 1), None),
        (3, [A, A], SeriesStatus.COMPLETED, (2, 0), A),
        (3, [B, A, A], SeriesStatus.COMPLETED, (2, 1), A),
        (3, [A, B, B], SeriesStatus.COMPLETED, (1, 2), B),
        (5, [A, A], SeriesStatus.IN_PROGRESS, (2, 0), None),
        (5, [A, A, A], SeriesStatus.COMPLETED, (3, 0), A),
        (5, [A, B, A, B], SeriesStatus.IN_PROGRESS, (2, 2), None),
        (5, [A, B, A, B, B], SeriesStatus.COMPLETED, (2, 3), B),
        (5, [B, B, A, A, A], SeriesStatus.COMPLETED, (3, 2), A),
        (7, [A, A, A], SeriesStatus.IN_PROGRESS, (3, 0), None),
        (7, [B, B, B, B], SeriesStatus.COMPLETED, (0, 4), B),
        (7, [A, B, A, B, A, B], SeriesStatus.IN_PROGRESS, (3, 3), None),
        (7, [A, B, A, B, A, B, A], SeriesStatus.COMPLETED, (4, 3), A),
    ],
)
def test_every_format(best_of, winners, status, score, winner):
    s = series(best_of)
    play(s, *winners)
    state = s.state()
    assert (state.status, state.score, state.winner) == (status, score, winner)
    assert state.is_draw == (best_of == 2 and score == (1, 1))
    assert all(g.counted for g in state.games)
    assert state.result().completed == (status == SeriesStatus.COMPLETED)


@pytest.mark.parametrize(
    ("best_of", "wins_needed", "final_scores"),
    [
        (1, 1, ((1, 0), (0, 1))),
        (2, 2, ((2, 0), (1, 1), (0, 2))),
        (3, 2, ((2, 0), (2, 1), (1, 2), (0, 2))),
        (5, 3, ((3, 0), (3, 1), (3, 2), (2, 3), (1, 3), (0, 3))),
        (7, 4, ((4, 0), (4, 1), (4, 2), (4, 3), (3, 4), (2, 4), (1, 4), (0, 4))),
    ],
)
def test_format_arithmetic(best_of, wins_needed, final_scores):
    fmt = SeriesFormat(best_of)
    assert fmt.wins_needed == wins_needed
    assert fmt.final_scores() == final_scores
    assert fmt.allows_draw == (best_of == 2)


def test_bo2_draw_result_has_no_winner():
    s = series(2)
    play(s, A, B)
    result = s.state().result()
    assert result.completed and result.is_draw and result.winner is None
    assert result.games_for(A) == (1, 1)


# --- revisions and corrections -----------------------------------------------------------------------


def test_duplicate_is_a_no_op():
    s = series(3)
    s.apply(game(1, A, score={A: 13, B: 9}))
    before = s.to_dict()
    change = s.apply(game(1, A, score={A: 13, B: 9}))
    assert change.status == ChangeStatus.DUPLICATE and not change.result_changed
    assert s.to_dict() == before


def test_higher_revision_flips_the_winner_and_rederives_the_series():
    s = series(3)
    play(s, A, A)
    assert s.state().winner == A
    change = s.apply(game(2, B, rev=2))  # game 2 was wrongly reported
    assert change.status == ChangeStatus.APPLIED and change.result_changed
    assert (change.state.status, change.state.score, change.state.winner) == (SeriesStatus.IN_PROGRESS, (1, 1), None)
    assert s.apply(game(3, B)).state.winner == B
    assert [(g.game_number, g.winner_team_id, g.revision) for g in s.state().games] == [(1, A, 1), (2, B, 2), (3, B, 1)]


def test_stale_revision_is_ignored_with_a_reason():
    s = series(3)
    s.apply(game(1, B, rev=3))
    change = s.apply(game(1, A, rev=2))
    assert change.status == ChangeStatus.STALE
    assert "revision 3" in change.reason
    assert s.state().games[0].winner_team_id == B


def test_same_revision_different_content_keeps_the_same_choice_in_any_order():
    first, second = series(3), series(3)
    x, y = game(1, A, rev=2), game(1, B, rev=2)
    first.apply(x)
    change = first.apply(y)
    second.apply(y)
    second.apply(x)
    assert change.status == ChangeStatus.CONFLICT and "send revision 3" in change.reason
    assert first.to_dict() == second.to_dict()


def test_score_is_kept_per_game():
    s = series(3)
    s.apply(game(1, A, score={A: 13, B: 11}))
    assert dict(s.state().games[0].score) == {A: 13, B: 11}


# --- games after the decision, gaps ------------------------------------------------------------------


def test_game_after_the_decision_is_kept_but_not_counted():
    s = series(3)
    play(s, A, A)
    change = s.apply(game(3, B))
    assert change.status == ChangeStatus.APPLIED and not change.result_changed
    state = change.state
    assert (state.score, state.winner) == ((2, 0), A)
    third = state.games[2]
    assert not third.counted and "already decided 2-0 after game 2" in third.note


def test_correction_reopening_the_series_counts_the_later_game_again():
    s = series(3)
    play(s, A, A)
    s.apply(game(3, B))
    state = s.apply(game(2, B, rev=2)).state
    assert (state.score, state.winner) == ((1, 2), B)
    assert all(g.counted for g in state.games)


def test_game_after_a_gap_waits_for_the_missing_one():
    s = series(3)
    s.apply(game(1, A))
    state = s.apply(game(3, A)).state
    assert state.status == SeriesStatus.IN_PROGRESS and state.score == (1, 0)
    assert "waiting for the result of game 2" in state.games[1].note
    assert s.apply(game(2, B)).state.winner == A


# --- overrides --------------------------------------------------------------------------------------


def test_override_beats_the_current_and_any_later_revision():
    s = series(3)
    play(s, A, A)
    state = s.apply(override("ov-1", 2, B)).state
    assert (state.score, state.status) == ((1, 1), SeriesStatus.IN_PROGRESS)
    assert state.games[1].source == "override" and state.games[1].reported_winner == A
    assert s.apply(game(2, A, rev=5)).state.games[1].winner_team_id == B  # a later revision does not undo staff


def test_override_audit_trail_and_latest_decision_wins_in_any_order():
    early, late = override("ov-1", 1, B, "2026-11-24T20:00:00Z"), override("ov-2", 1, A, "2026-11-24T21:00:00+01:00")
    first, second = series(3), series(3)
    for s, order in ((first, (early, late)), (second, (late, early))):
        s.apply(game(1, B))
        for o in order:
            s.apply(o)
    assert first.to_dict() == second.to_dict()
    state = first.state()
    # 21:00+01:00 is 20:00Z: same instant, so the greater event id decides, whatever the arrival order.
    assert state.games[0].winner_team_id == A
    audit = [(a.event_id, a.actor, a.reason, a.at, a.effective) for a in state.audit]
    assert audit == [
        ("ov-1", "admin-7", "replay review", "2026-11-24T20:00:00+00:00", False),
        ("ov-2", "admin-7", "replay review", "2026-11-24T20:00:00+00:00", True),
    ]
    assert "superseded by ov-2" in state.audit[0].note


def test_override_alone_enters_a_game_and_duplicate_override_is_a_no_op():
    s = series(1)
    change = s.apply(override("ov-9", 1, B))
    assert change.state.winner == B and change.state.games[0].revision is None
    assert s.apply(override("ov-9", 1, B)).status == ChangeStatus.DUPLICATE


# --- forfeits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("best_of", "policy", "played", "forfeiter", "score", "winner"),
    [
        (3, "awarded", [], A, (0, 2), B),
        (3, "awarded", [A], A, (0, 2), B),
        (5, "awarded", [B, B], B, (3, 0), A),
        (1, "awarded", [], B, (1, 0), A),
        (2, "awarded", [A], A, (0, 2), B),  # a forfeited bo2 is a loss, never a draw
        (3, "played", [A], A, (1, 0), B),  # the games stand; only the winner is set
        (3, "awarded", [A, A], A, (0, 2), B),  # even a finished series: the ruling is on the series
    ],
)
def test_forfeit_awards_the_series_to_the_other_team(best_of, policy, played, forfeiter, score, winner):
    s = series(best_of, policy)
    play(s, *played)
    change = s.apply(Forfeit("ff-1", "s-1", forfeiter, "2026-11-24T19:00:00Z", "admin-7", "no-show"))
    state = change.state
    assert (state.status, state.score, state.winner) == (SeriesStatus.COMPLETED, score, winner)
    assert state.forfeited_by == forfeiter
    assert not state.is_draw
    assert state.audit[-1].kind == "forfeit" and state.audit[-1].effective


def test_only_the_first_forfeit_counts():
    s = series(3)
    s.apply(Forfeit("ff-2", "s-1", B, "2026-11-24T19:30:00Z"))
    state = s.apply(Forfeit("ff-1", "s-1", A, "2026-11-24T19:00:00Z")).state
    assert (state.winner, state.forfeited_by) == (B, A)
    assert [(a.event_id, a.effective) for a in state.audit] == [("ff-1", True), ("ff-2", False)]
    assert "already been forfeited" in state.audit[1].note


# --- invalid input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (GameResult("other", 1, A), "not 's-1'"),
        (GameResult("s-1", 4, A), "cannot exist in a best-of-3"),
        (GameResult("s-1", 1, "team-z"), "winner 'team-z' does not play"),
        (GameResult("s-1", 1, A, 1, {"team-z": 3}), "the score names ['team-z']"),
        (GameOverride("o", "s-1", 1, "team-z", "x", "y", "2026-11-24T20:00:00Z"), "pinned winner 'team-z'"),
        (Forfeit("f", "s-1", "team-z", "2026-11-24T20:00:00Z"), "team 'team-z' does not play"),
        (Forfeit("f", "other", A, "2026-11-24T20:00:00Z"), "forfeit is for series 'other'"),
    ],
)
def test_events_that_can_never_apply_are_rejected_with_a_reason(event, message):
    s = series(3)
    before = s.to_dict()
    change = s.apply(event)
    assert change.status == ChangeStatus.REJECTED and message in change.reason
    assert s.to_dict() == before


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GameResult("s", 0, A), "game_number must be at least 1"),
        (lambda: GameResult("s", True, A), "game_number must be an integer"),
        (lambda: GameResult("s", 1, A, revision=0), "revision must be at least 1"),
        (lambda: GameResult("s", 1, ""), "winner_team_id must be a non-empty string"),
        (lambda: GameResult("s", 1, A, 1, {A: -1}), "must be at least 0"),
        (lambda: GameOverride("o", "s", 1, A, "", "why", "2026-11-24T20:00:00Z"), "actor must be"),
        (lambda: GameOverride("o", "s", 1, A, "x", "why", "2026-11-24T20:00:00"), "needs a timezone"),
        (lambda: Forfeit("f", "s", A, "yesterday"), "not an ISO-8601 timestamp"),
        (lambda: Series("s", A, A), "two different teams"),
    ],
)
def test_malformed_events_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


# --- configuration and persistence ------------------------------------------------------------------


def test_format_from_and_to_dict():
    assert SeriesFormat.from_dict({"best_of": "bo5"}) == SeriesFormat(5)
    assert SeriesFormat.from_dict({"best_of": 7, "forfeit_score": "played"}).to_dict() == {
        "best_of": 7,
        "forfeit_score": "played",
    }
    assert SeriesFormat.from_dict({}) == SeriesFormat(3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"best_of": 4}, "best_of must be one of [1, 2, 3, 5, 7], got 4"),
        ({"best_of": "best of three"}, "best_of must be a number"),
        ({"best_of": True}, "best_of must be one of"),
        ({"best_of": 3.0}, "best_of must be one of"),
        ({"forfeit_score": "coin"}, "forfeit_score must be one of ['awarded', 'played']"),
        ({"best_of": 3, "bestof": 3}, "unknown field(s) ['bestof']"),
        ([3], "must be a mapping"),
    ],
)
def test_format_errors(data, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SeriesFormat.from_dict(data)


def test_series_state_round_trips_through_json():
    s = series(5)
    s.apply(game(1, A, score={A: 13, B: 2}))
    s.apply(game(2, B, rev=2))
    s.apply(override("ov-1", 3, A))
    s.apply(Forfeit("ff-1", "s-1", B, "2026-11-24T22:00:00Z", "admin", "illness"))
    stored = json.loads(json.dumps(s.to_dict()))
    restored = Series.from_dict(stored)
    assert restored.to_dict() == s.to_dict()
    assert restored.state() == s.state()
    json.dumps(s.state().to_dict())  # the derived view is JSON-friendly too


def test_stored_series_of_another_version_is_refused():
    stored = series().to_dict() | {"version": 99}
    with pytest.raises(ValueError, match="version 99"):
        Series.from_dict(stored)


def test_stored_series_with_an_impossible_game_is_refused():
    stored = series(1).to_dict()
    stored["games"] = [game(2, A).to_dict()]
    with pytest.raises(ValueError, match="inconsistent"):
        Series.from_dict(stored)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": "completed", "games_a": 2, "games_b": 0, "winner": B}, "the winner is 'team-a'"),
        ({"status": "in_progress", "games_a": 1, "games_b": 0, "winner": A}, "only a completed series"),
        ({"status": "completed", "games_a": 0, "games_b": 2, "winner": A, "forfeited_by": A}, "must be the other team"),
        ({"status": "done", "games_a": 0, "games_b": 0}, "status must be one of"),
    ],
)
def test_inconsistent_series_results_are_refused(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SeriesResult.from_dict({"series_id": "s", "team_a": A, "team_b": B, "best_of": 3} | fields)
