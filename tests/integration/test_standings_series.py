"""Series and group standings through a real worker and the real broker: games, a corrected revision, a staff
override, a forfeit, late duplicates and a full replay of every event. The answers of ``GET /series/{id}`` and
``GET /tournaments/{id}/groups/{stage}`` must equal a recompute from the facts, and nothing may be counted or
emitted twice."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from crownstream.standings.groups import GroupPointsRule, recompute_group
from crownstream.standings.series import Forfeit, GameOverride, GameResult, Series, SeriesFormat
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import DEAD_LETTER, STANDINGS_EVENTS
from tests.support.kafka_read import read_topic

pytestmark = pytest.mark.slow

T = "series-cup"
STAGE = "group-b"
TEAMS = ["Ash", "Birch", "Cedar", "Dune"]
START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _event(kind: str, event_id: str, minutes: int, **fields) -> dict:
    return {
        "type": kind,
        "event_id": event_id,
        "occurred_at": (START + timedelta(minutes=minutes)).isoformat(),
        "tournament_id": T,
        **fields,
    }


def game(series_id: str, a: str, b: str, n: int, winner: str, minutes: int, revision: int = 1) -> dict:
    return _event(
        "match.completed",
        f"{series_id}:g{n}:r{revision}",
        minutes,
        stage_id=STAGE,
        match_id=f"{series_id}-g{n}",
        revision=revision,
        result={
            "format": "series_game",
            "series_id": series_id,
            "team_ids": [a, b],
            "game_number": n,
            "winner_team_id": winner,
        },
    )


def scenario() -> list[dict]:
    events = [
        _event(
            "stage.configured",
            "cfg",
            0,
            stage_id=STAGE,
            name="Group B",
            rules={"format": "series_group", "best_of": 3, "points": {"2-0": 3, "2-1": 2, "1-2": 1, "0-2": 0}},
        )
    ]
    m = 1
    pairs = [(a, b) for i, a in enumerate(TEAMS) for b in TEAMS[i + 1 :]]
    for s, (a, b) in enumerate(pairs, start=1):
        sid = f"s{s}"
        winners = [a, b, a] if s % 2 else [b, b]
        for n, w in enumerate(winners, start=1):
            events.append(game(sid, a, b, n, w, m))
            m += 1
    # s2 was decided 2-0 for Cedar, so a game 3 reported now is kept but not counted; then game 1 is corrected
    # (revision 2) to Ash, which reopens the series at 1-1 and lets game 3 decide it; then a late duplicate of the
    # old revision 1, which must change nothing.
    events.append(game("s2", "Ash", "Cedar", 3, "Ash", m - 1))
    events.append(game("s2", "Ash", "Cedar", 1, "Ash", m, revision=2))
    events.append(game("s2", "Ash", "Cedar", 1, "Cedar", m + 1, revision=1))
    # A staff override pins s3 game 3 to Dune; a forfeit ends s6 (Cedar v Dune) whatever its games said.
    events.append(
        _event(
            "result.overridden",
            "ovr-1",
            m + 2,
            stage_id=STAGE,
            match_id="s3-g3",
            actor="ref-kim",
            reason="game 3 replayed after a server crash",
            series_id="s3",
            game_number=3,
            winner_team_id="Dune",
        )
    )
    events.append(
        _event("match.forfeited", "ff-1", m + 3, stage_id=STAGE, match_id="s6-g1", team_id="Dune", series_id="s6")
    )
    # A game that cannot exist in a best-of-3: rejected to the DLQ, nothing else changes.
    events.append(game("s1", "Ash", "Birch", 4, "Ash", m + 4))
    # Duplicates of already-applied events, as a retrying producer would send them.
    events += [events[3] | {}, events[-3] | {}]
    return events


def expected(events: list[dict]) -> tuple[dict[str, dict], list[dict]]:
    """The oracle: every series rebuilt from scratch from the facts, the group recomputed from scratch."""
    fmt = SeriesFormat(3)
    series: dict[str, Series] = {}
    for e in events:
        if e["type"] == "match.completed":
            r = e["result"]
            s = series.setdefault(r["series_id"], Series(r["series_id"], *sorted(r["team_ids"]), fmt))
            s.apply(GameResult(r["series_id"], r["game_number"], r["winner_team_id"], e["revision"]))
        elif e["type"] == "result.overridden":
            series[e["series_id"]].apply(
                GameOverride(
                    e["event_id"],
                    e["series_id"],
                    e["game_number"],
                    e["winner_team_id"],
                    e["actor"],
                    e["reason"],
                    e["occurred_at"],
                )
            )
        elif e["type"] == "match.forfeited":
            series[e["series_id"]].apply(Forfeit(e["event_id"], e["series_id"], e["team_id"], e["occurred_at"]))
    rule = GroupPointsRule(3, (("2-0", 3), ("2-1", 2), ("1-2", 1), ("0-2", 0)))
    rows = recompute_group(TEAMS, [s.state().result() for s in series.values()], rule, STAGE)
    return {sid: s.state().to_dict() for sid, s in series.items()}, [r.to_dict() for r in rows]


def get(url: str, path: str, **params) -> httpx.Response:
    return httpx.get(url + path, params=params, timeout=10)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last is True:
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


async def produce(settings, events):
    async with EventProducer(settings) as producer:
        for event in events:
            await producer.send(event)


async def test_series_and_group_standings_exact_under_corrections_duplicates_and_replay(settings, topics, start_worker):
    worker = start_worker()
    events = scenario()
    series_expected, group_expected = expected(events)
    assert series_expected["s2"]["winner"] == "Ash" and series_expected["s2"]["score"] == [2, 1]  # was Cedar 2-0
    assert series_expected["s6"]["forfeited_by"] == "Dune"

    await produce(settings, events)

    def group_matches():
        r = get(worker.url, f"/tournaments/{T}/groups/{STAGE}")
        if r.status_code != 200:
            return f"{r.status_code} {r.text[:200]}"
        rows = [{k: v for k, v in row.items() if k != "team_name"} for row in r.json()["standings"]]
        return True if rows == group_expected else rows

    wait_for(group_matches, 60, "group standings equal to a recompute")
    for sid, state in series_expected.items():
        r = get(worker.url, f"/series/{sid}", tournament=T)
        assert r.status_code == 200, r.text
        body = r.json()
        assert {k: body[k] for k in state} == state, sid
    assert get(worker.url, "/series/s1").status_code == 400  # which tournament: a clear error, not a guess
    assert get(worker.url, "/series/nope", tournament=T).status_code == 404
    audit = get(worker.url, "/series/s3", tournament=T).json()["audit"]
    assert [(a["actor"], a["team_id"], a["effective"]) for a in audit] == [("ref-kim", "Dune", True)]

    outputs_path = STANDINGS_EVENTS.full_name(settings)
    # The standings above are read-your-writes; the outputs count once their transaction commits (a commit
    # interval later): read until the last rank change of every team is there, or 60 s.
    wanted = {row["team_id"]: row["rank"] for row in group_expected}
    deadline = time.monotonic() + 60
    while True:
        first = [e for e in await read_topic(settings.kafka_bootstrap, outputs_path) if e["stage_id"] == STAGE]
        if {e["team_id"]: e["new_rank"] for e in first} == wanted or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert first, "group rank changes must be emitted"
    ids = collections.Counter(e["event_id"] for e in first)
    assert max(ids.values()) == 1
    final_rank = {}
    for e in first:  # the last ranking.changed of each team is its rank now
        final_rank[e["team_id"]] = e["new_rank"]
    assert final_rank == {row["team_id"]: row["rank"] for row in group_expected}

    dlq = await read_topic(settings.kafka_bootstrap, DEAD_LETTER.full_name(settings))
    assert any(e.get("event_id") == "s1:g4:r1" for e in dlq)

    # Replaying every event (a consumer restarted from the beginning, a producer resending a file) changes nothing.
    await produce(settings, events)
    marker = _event(
        "match.completed",
        "marker",
        999,
        stage_id="other",
        match_id="m",
        result={
            "format": "series_game",
            "series_id": "marker",
            "team_ids": ["X", "Y"],
            "game_number": 1,
            "winner_team_id": "X",
        },
    )
    await produce(settings, [marker])
    wait_for(lambda: get(worker.url, "/series/marker", tournament=T).status_code == 200, 60, "replay processed")
    assert group_matches() is True
    again = [e for e in await read_topic(settings.kafka_bootstrap, outputs_path) if e["stage_id"] == STAGE]
    assert len(again) == len(first), "a replay emitted ranking changes again"
