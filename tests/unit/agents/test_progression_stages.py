"""Swiss and bracket stages through the tournament-events agent's handlers (in-memory tables, captured sends):
the pipeline pairs each Swiss round from the results and announces it, announces a seeded bracket, reports the
ranks that move, takes staff pairings, and sends what cannot belong to the stage to the dead-letter topic."""

from __future__ import annotations

import json

import orjson

from crownstream.agents import series as series_agent
from crownstream.schemas.events import Envelope
from crownstream.schemas.examples import example
from crownstream.streams.topics import TOURNAMENT_EVENTS
from tests.unit.agents.handler_harness import Harness, run

TOURNAMENT = TOURNAMENT_EVENTS.full_name()
SEEDS = {"a": 1, "b": 2, "c": 3, "d": 4}


def raw(body: dict) -> bytes:
    return json.dumps(body).encode()


def configure(stage_id: str, rules: dict, event_id: str = "cfg") -> bytes:
    return raw(
        example("stage.configured", event_id=event_id, tournament_id="t1", stage_id=stage_id, rules=rules, prizes=[])
    )


def game(stage_id: str, series_id: str, a: str, b: str, winner: str, number: int = 1) -> bytes:
    return raw(
        example(
            "match.completed",
            event_id=f"g-{series_id}-{number}-{winner}",
            tournament_id="t1",
            stage_id=stage_id,
            match_id=f"{series_id}-{number}",
            result={
                "format": "series_game",
                "series_id": series_id,
                "team_ids": [a, b],
                "game_number": number,
                "winner_team_id": winner,
                "score": {a: 13 if winner == a else 7, b: 13 if winner == b else 7},
            },
        )
    )


def announced(h: Harness, event_type: str) -> list[dict]:
    return [e for e in map(orjson.loads, h.announced) if e["type"] == event_type]


def ranks(h: Harness) -> list[tuple[str, int | None, int]]:
    return [
        (e["team_id"], e["old_rank"], e["new_rank"])
        for e in map(orjson.loads, h.emitted)
        if e["type"] == "ranking.changed"
    ]


def test_a_swiss_stage_is_paired_round_by_round_and_each_round_announced_once():
    async def go() -> Harness:
        with Harness() as h:
            assert isinstance(
                (await h.feed(TOURNAMENT, configure("sw", {"format": "swiss", "seeds": SEEDS}))).result, Envelope
            )
            [first] = announced(h, "round.paired")
            assert (first["round"], first["source"]) == (1, "generated")
            assert [(p["team_a"], p["team_b"], p["best_of"]) for p in first["pairings"]] == [
                ("a", "c", 1),
                ("b", "d", 1),
            ]
            # The announcement comes back through the topic: nothing to store again, the teams are told.
            outcome = await h.feed(TOURNAMENT, h.announced[0])
            assert isinstance(outcome.result, Envelope)
            await h.feed(TOURNAMENT, game("sw", "sw-r1-m1", "a", "c", "c"))
            assert len(announced(h, "round.paired")) == 1  # round 1 still being played
            await h.feed(TOURNAMENT, game("sw", "sw-r1-m2", "b", "d", "b"))
            second = announced(h, "round.paired")[-1]
            # 1-0 pool: b (seed 2), c (seed 3); 0-1 pool: a, d — every team met a new opponent.
            assert second["round"] == 2
            assert [(p["team_a"], p["team_b"]) for p in second["pairings"]] == [("b", "c"), ("a", "d")]
            # Three wins advance with wins_to_advance 3: both round-2 matches can't decide yet: best-of-1.
            assert {p["best_of"] for p in second["pairings"]} == {1}
            # The same result again changes nothing and announces nothing.
            await h.feed(TOURNAMENT, game("sw", "sw-r1-m2", "b", "d", "b"))
            assert len(announced(h, "round.paired")) == 2
            assert h.tables["stage_rounds"]["t1/sw"]["rounds"][1]["number"] == 2
            return h

    h = run(go())
    # After round 1: b and c are 1-0 with equal difficulty (each beat a 0-1 team), so seed puts b first; a and d
    # are 0-1 with equal difficulty (each lost to a 1-0 team), a the better seed.
    last = {}
    for team, _, new in ranks(h):
        last[team] = new
    assert last == {"b": 1, "c": 2, "a": 3, "d": 4}


def dead_letters(monkeypatch) -> list[tuple[str, str]]:
    """What the series handlers send to the dead-letter topic (event id, reason): the harness has no record to
    copy there, so the handlers' one way out is watched instead."""
    rejected: list[tuple[str, str]] = []

    async def capture(event, reason: str) -> None:
        rejected.append((event.event_id, reason))

    monkeypatch.setattr(series_agent, "_reject", capture)
    return rejected


def test_staff_pairings_replace_a_round_and_bad_ones_go_to_the_dead_letter_topic(monkeypatch):
    rejected = dead_letters(monkeypatch)

    async def go() -> Harness:
        with Harness() as h:
            await h.feed(TOURNAMENT, configure("sw", {"format": "swiss", "seeds": SEEDS}))
            staff = example(
                "round.paired",
                event_id="staff-1",
                tournament_id="t1",
                stage_id="sw",
                round=1,
                source="staff",
                pairings=[
                    {"series_id": "x1", "team_a": "a", "team_b": "b", "best_of": 3},
                    {"series_id": "x2", "team_a": "c", "team_b": "d", "best_of": 3},
                ],
            )
            assert isinstance((await h.feed(TOURNAMENT, raw(staff))).result, Envelope)
            stored = h.tables["stage_rounds"]["t1/sw"]["rounds"]
            assert [(r["number"], r["source"], [p["series_id"] for p in r["pairings"]]) for r in stored] == [
                (1, "staff", ["x1", "x2"])
            ]
            stranger = {
                **staff,
                "event_id": "staff-2",
                "pairings": [{"series_id": "x3", "team_a": "a", "team_b": "zz", "best_of": 1}],
            }
            await h.feed(TOURNAMENT, raw(stranger))
            assert rejected[-1][0] == "staff-2" and "not seeded" in rejected[-1][1]
            assert len(h.tables["stage_rounds"]["t1/sw"]["rounds"][0]["pairings"]) == 2  # the staff round holds
            # A series between teams the stage does not seed is refused, not stored.
            await h.feed(TOURNAMENT, game("sw", "x9", "a", "zz", "a"))
            assert "not seeded in Swiss stage" in rejected[-1][1]
            assert "t1/x9" not in h.tables["series"]
            # The staff round's best-of-3 is the series format: one game is not a finished series.
            await h.feed(TOURNAMENT, game("sw", "x1", "a", "b", "a"))
            assert not any(e["type"] == "ranking.changed" for e in map(orjson.loads, h.emitted))
            await h.feed(TOURNAMENT, game("sw", "x1", "a", "b", "a", number=2))
            assert any(e["type"] == "ranking.changed" for e in map(orjson.loads, h.emitted))
            return h

    run(go())


def test_a_seeded_bracket_is_announced_and_its_places_reported(monkeypatch):
    rejected = dead_letters(monkeypatch)

    async def go() -> Harness:
        with Harness() as h:
            rules = {"format": "bracket", "template": "single_elimination", "seeds": SEEDS, "best_of": 1}
            await h.feed(TOURNAMENT, configure("po", rules))
            [ready] = announced(h, "bracket.ready")
            assert [(m["slot"], m["series_id"], m["team_a"], m["team_b"]) for m in ready["matches"]] == [
                ("r1_m1", "po-r1_m1", "a", "d"),
                ("r1_m2", "po-r1_m2", "b", "c"),
            ]
            await h.feed(TOURNAMENT, game("po", "po-quarter", "a", "d", "a"))
            assert "not a match of bracket stage" in rejected[-1][1]
            for series, a, b, winner in (
                ("po-r1_m1", "a", "d", "d"),
                ("po-r1_m2", "b", "c", "b"),
                ("po-final", "d", "b", "d"),
            ):
                assert isinstance((await h.feed(TOURNAMENT, game("po", series, a, b, winner))).result, Envelope)
            final_ranks = {team: new for team, _, new in ranks(h)}
            assert final_ranks == {"d": 1, "b": 2, "a": 3, "c": 3}
            return h

    run(go())
