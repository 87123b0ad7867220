"""Properties of the incremental battle-royale leaderboard, checked against the from-scratch ``recompute``:
arrival order, duplicates and stale revisions do not matter; replaying changes nothing; every correction
leaves the board equal to a recompute; reported rank deltas are exactly the differences between the boards
before and after."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crownstream.standings.battle_royale import Leaderboard, Status, recompute
from crownstream.standings.br_inputs import Disqualification, Forfeit, LobbyRow, MatchResult, Override
from crownstream.standings.point_tables import NAMED_TABLES, PointTable
from crownstream.standings.rules import RuleSet
from crownstream.standings.tiebreakers import TIEBREAKERS, ranked

STAGE = "stage-p"
TEAMS = ("a", "b", "c", "d", "e")
MATCHES = ("m1", "m2", "m3", "m4")
TIMES = ("2026-05-02T10:00:00Z", "2026-05-02T11:00:00Z", "2026-05-02T11:00:00+01:00")

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def rule_sets(draw) -> RuleSet:
    table = draw(st.sampled_from(sorted(NAMED_TABLES)) | st.lists(st.integers(0, 15), min_size=1, max_size=6))
    order = draw(st.permutations(TIEBREAKERS))
    return RuleSet(
        PointTable.from_value(table),
        kill_points=draw(st.integers(0, 2)),
        kill_cap=draw(st.none() | st.integers(0, 4)),
        tiebreakers=tuple(order[: draw(st.integers(1, len(order)))]),
        starting_points=draw(st.dictionaries(st.sampled_from(TEAMS), st.integers(-5, 20), max_size=2)),
        match_point_threshold=draw(st.none() | st.integers(1, 30)),
    )


@st.composite
def results(draw) -> list[MatchResult]:
    """Revisions of some matches. One content per (match, revision): that pair identifies a result. A revision
    may move its match in the sequence, and two matches may share a sequence number."""
    out = []
    for match_id in draw(st.lists(st.sampled_from(MATCHES), unique=True, min_size=1)):
        for revision in draw(st.lists(st.integers(1, 4), unique=True, min_size=1, max_size=3)):
            teams = draw(st.lists(st.sampled_from(TEAMS), unique=True, min_size=1))
            placements = draw(st.permutations(range(1, len(teams) + 1)))
            kills = draw(st.lists(st.integers(0, 6), min_size=len(teams), max_size=len(teams)))
            sequence = draw(st.integers(1, 4))
            minute = draw(st.integers(0, 2))
            out.append(
                MatchResult(
                    STAGE,
                    match_id,
                    revision,
                    sequence,
                    f"2026-05-01T1{sequence}:0{minute}:00Z",
                    tuple(LobbyRow(t, p, k) for t, p, k in zip(teams, placements, kills, strict=True)),
                )
            )
    return out


@st.composite
def stages(draw) -> tuple[RuleSet, list]:
    events: list = draw(results())
    # Decisions aim at few matches and teams, so that they often meet the same line or team.
    for i in range(draw(st.integers(0, 4))):
        events.append(
            Override(
                f"o{i}",
                draw(st.sampled_from(MATCHES[:2])),
                draw(st.sampled_from(TEAMS[:3])),
                draw(st.integers(1, 6)),
                draw(st.none() | st.integers(0, 5)),
                "ref",
                "review",
                draw(st.sampled_from(TIMES)),
            )
        )
    for i in range(draw(st.integers(0, 2))):
        events.append(
            Disqualification(
                f"d{i}", draw(st.sampled_from(TEAMS[:3])), draw(st.integers(1, 5)), "admin", "cheating", TIMES[0]
            )
        )
    for _ in range(draw(st.integers(0, 2))):
        events.append(Forfeit(draw(st.sampled_from(MATCHES[:2])), draw(st.sampled_from(TEAMS))))
    return draw(rule_sets()), events


def oracle(rules: RuleSet, events: list) -> list:
    return recompute(
        rules,
        [e for e in events if isinstance(e, MatchResult)],
        [e for e in events if isinstance(e, Override)],
        [e for e in events if isinstance(e, Disqualification)],
        [e for e in events if isinstance(e, Forfeit)],
    )


def table(board: Leaderboard) -> list:
    return [s for _, s in board.standings()]


def positions(board: Leaderboard) -> dict[str, tuple[int, int]]:
    return {s.team_id: (rank, s.total_points) for rank, s in board.standings()}


@SETTINGS
@given(stages(), st.data())
def test_any_arrival_order_with_duplicates_gives_the_same_standings(stage, data):
    rules, events = stage
    resent = data.draw(st.lists(st.sampled_from(events), max_size=4))
    arrival = data.draw(st.permutations(events + resent))
    in_order, shuffled = Leaderboard(rules, STAGE), Leaderboard(rules, STAGE)
    for event in events:
        in_order.apply(event)
    for event in arrival:
        shuffled.apply(event)
    assert table(shuffled) == table(in_order) == oracle(rules, events)
    assert shuffled.champion == in_order.champion


@SETTINGS
@given(stages())
def test_applying_every_event_twice_changes_nothing(stage):
    rules, events = stage
    board = Leaderboard(rules, STAGE)
    for event in events:
        board.apply(event)
        before = board.standings()
        again = board.apply(event)
        assert again.status in (Status.DUPLICATE, Status.STALE)
        assert again.changed == () and again.rank_changes == ()
        assert board.standings() == before
    before = board.standings()
    for event in events:
        assert not board.apply(event).changed
    assert board.standings() == before


@SETTINGS
@given(stages())
def test_after_every_event_and_correction_the_board_equals_a_recompute(stage):
    rules, events = stage
    board = Leaderboard(rules, STAGE)
    for i, event in enumerate(events):
        board.apply(event)
        expected = oracle(rules, events[: i + 1])
        assert table(board) == expected
        assert board.champion == next((s.team_id for s in expected if s.champion), None)
        # Teams level on every rule share a rank (1, 2, 2, 4): the oracle's ranking, not list positions.
        assert [board.rank_of(s.team_id) for s in expected] == [r for r, _, _ in ranked(expected, rules.tiebreakers)]


@SETTINGS
@given(stages(), st.data())
def test_reported_rank_changes_are_the_difference_between_before_and_after(stage, data):
    rules, events = stage
    board = Leaderboard(rules, STAGE)
    for event in data.draw(st.permutations(events)):
        before = positions(board)
        change = board.apply(event)
        after = positions(board)
        expected = {
            t: (before.get(t, (None, None)), after.get(t, (None, None)))
            for t in before.keys() | after.keys()
            if before.get(t) != after.get(t)
        }
        reported = {c.team_id: ((c.old_rank, c.old_points), (c.new_rank, c.new_points)) for c in change.rank_changes}
        assert len(reported) == len(change.rank_changes), "a team reported twice"
        assert reported == expected
        assert set(change.changed) >= {t for t, (old, new) in expected.items() if old[1] != new[1]}
        new_ranks = [c.new_rank for c in change.rank_changes if c.new_rank is not None]
        assert new_ranks == sorted(new_ranks)


@SETTINGS
@given(stages())
def test_snapshot_and_per_key_states_restore_the_same_board(stage):
    rules, events = stage
    board = Leaderboard(rules, STAGE)
    for event in events:
        board.apply(event)
    restored = Leaderboard.restore(json.loads(json.dumps(board.snapshot())))
    assert table(restored) == table(board)
    matches = {m: s for m in MATCHES if (s := board.match_state(m)) is not None}
    teams = {t: s for t in TEAMS if (s := board.team_state(t)) is not None}
    rebuilt = Leaderboard.from_states(rules, STAGE, json.loads(json.dumps(matches)), json.loads(json.dumps(teams)))
    assert table(rebuilt) == table(board)
    # Replaying everything into the restored board changes nothing: what it has seen survived the restore.
    for event in events:
        assert not restored.apply(event).changed
    assert table(restored) == table(board)
