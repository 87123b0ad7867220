"""The standings agent's ranking.changed outputs: the fast encoding is byte-identical to the event model's."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from crownstream.agents.standings import derived_id, ranking_changed_records
from crownstream.schemas import events as ev
from crownstream.schemas.codec import encode
from crownstream.standings.battle_royale import RankChange

TRIGGER = ev.MatchCompleted.model_validate(
    {
        "event_id": "evt-1",
        "occurred_at": "2026-03-01T10:00:00.123456+02:00",
        "tournament_id": "spring-cup",
        "stage_id": "br",
        "match_id": "m1",
        "result": {
            "format": "battle_royale",
            "sequence": 1,
            "placements": [{"team_id": "t1", "placement": 1, "kills": 0}],
        },
    }
)

team_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:\-]{0,39}\Z")
ranks = st.none() | st.integers(min_value=1, max_value=100_000)
changes = st.lists(
    st.builds(
        RankChange,
        team_id=team_ids,
        old_rank=ranks,
        new_rank=ranks,
        old_points=st.none() | st.integers(0, 2**40),
        new_points=st.none() | st.integers(0, 2**40),
    ),
    max_size=30,
)


def through_the_model(changes: list[RankChange], event_id: str = TRIGGER.event_id) -> list[bytes]:
    return [
        encode(
            ev.RankingChanged(
                event_id=derived_id(event_id, "rank", rc.team_id),
                occurred_at=TRIGGER.occurred_at,
                tournament_id=TRIGGER.tournament_id,
                stage_id="br",
                team_id=rc.team_id,
                old_rank=rc.old_rank,
                new_rank=rc.new_rank,
                points=rc.new_points,
            )
        )
        for rc in changes
        if rc.old_rank != rc.new_rank and rc.new_rank is not None
    ]


@given(changes)
def test_same_bytes_as_the_event_model(changes):
    changes = [rc for rc in changes if rc.new_rank is None or rc.new_points is not None]  # points go with a rank
    assert ranking_changed_records(TRIGGER, "br", changes) == through_the_model(changes)


def test_a_long_trigger_id_gives_hashed_ids_in_every_record():
    trigger = TRIGGER.model_copy(update={"event_id": "e" * 120})
    changes = [RankChange(f"team-{i}", i + 2, i + 1, 5, 9) for i in range(3)]
    records = ranking_changed_records(trigger, "br", changes)
    assert len(records) == 3 and all(b'"event_id":"d-' in r for r in records)
    assert len({r for r in records}) == 3


def test_unmoved_and_departed_teams_give_no_record():
    changes = [RankChange("a", 1, 1, 5, 9), RankChange("b", 2, None, 5, None), RankChange("c", None, 3, None, 4)]
    records = ranking_changed_records(TRIGGER, "br", changes)
    assert len(records) == 1 and b'"team_id":"c"' in records[0] and b'"old_rank":null' in records[0]
    assert datetime.fromisoformat(ev.RankingChanged.model_validate_json(records[0]).occurred_at.isoformat()) == (
        datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    )
