"""A realistic demo tournament as an event stream: a 16-team battle-royale stage over six matches (PUBG
Mobile 2023 points) with a corrected result and a staff override, and a best-of-3 round-robin group.

Deterministic for a given seed, so the demo's summary can be checked against what receivers got.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from crownstream.standings.series import SeriesResult
from crownstream.standings.swiss import SwissStage
from crownstream.standings.swiss import rules_from_dict as swiss_rules_from_dict

TEAM_NAMES = [
    "Alpha Wolves",
    "Bravo Six",
    "Crimson Tide",
    "Delta Force",
    "Echo Squad",
    "Falcon Eye",
    "Ghost Unit",
    "Hydra",
    "Iron Clad",
    "Jade Dragons",
    "Kraken",
    "Lunar",
    "Midnight",
    "Nova",
    "Orion",
    "Phoenix",
]
GROUP_TEAMS = ["Titans", "Vipers", "Wraiths", "Yetis"]


def _event(kind: str, event_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": event_id, "schema_version": 1, "occurred_at": at.isoformat(), **fields}


def demo_tournament(
    tournament_id: str = "demo-cup",
    seed: int = 2026,
    br_matches: int = 6,
    start: datetime | None = None,
    swiss: bool = False,
) -> list[dict[str, Any]]:
    """The demo's events in order. ``swiss`` adds an eight-team Swiss stage (two wins advance, two losses
    eliminate) whose rounds the pipeline pairs as the results come in."""
    rng = random.Random(seed)
    at = start or datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    t = tournament_id
    events: list[dict[str, Any]] = []
    teams = [f"team-{i + 1:02d}" for i in range(len(TEAM_NAMES))]

    events.append(
        _event(
            "stage.configured",
            f"{t}:br:config",
            at,
            tournament_id=t,
            stage_id="br-finals",
            name="Battle Royale Finals",
            rules={"format": "battle_royale", "point_table": "pubgm_2023", "kill_points": 1},
            prizes=[
                {"placement": p, "prize": {"amount_minor": amount, "currency": "USD"}}
                for p, amount in ((1, 500000), (2, 250000), (3, 100000))
            ],
        )
    )
    for i, team in enumerate(teams):
        members = [f"user-{i + 1:02d}-{m}" for m in range(1, 5)]
        events.append(
            _event(
                "tournament.registered",
                f"{t}:reg:{team}",
                at,
                tournament_id=t,
                team_id=team,
                team_name=TEAM_NAMES[i],
                user_ids=members,
            )
        )
    events.append(_event("bracket.ready", f"{t}:br:bracket", at, tournament_id=t, stage_id="br-finals"))

    for n in range(1, br_matches + 1):
        match = f"br-m{n}"
        at += timedelta(minutes=30)
        events.append(
            _event("match.started", f"{t}:{match}:start", at, tournament_id=t, stage_id="br-finals", match_id=match)
        )
        order = teams[:]
        rng.shuffle(order)
        placements = [
            {"team_id": team, "placement": p + 1, "kills": max(0, int(rng.gauss(6 - p / 3, 2)))}
            for p, team in enumerate(order)
        ]
        at += timedelta(minutes=25)
        events.append(
            _event(
                "match.completed",
                f"{t}:{match}:r1",
                at,
                tournament_id=t,
                stage_id="br-finals",
                match_id=match,
                revision=1,
                result={"format": "battle_royale", "sequence": n, "placements": placements},
            )
        )
        if n == 3:
            # The referee recounts kills: revision 2 replaces revision 1 wholesale.
            corrected = [dict(row) for row in placements]
            corrected[0]["kills"] += 3
            corrected[5]["kills"] = max(0, corrected[5]["kills"] - 2)
            events.append(
                _event(
                    "match.disputed",
                    f"{t}:{match}:dispute",
                    at,
                    tournament_id=t,
                    stage_id="br-finals",
                    match_id=match,
                    team_id=corrected[5]["team_id"],
                    reason="kill feed shows two kills by another team",
                )
            )
            events.append(
                _event(
                    "match.completed",
                    f"{t}:{match}:r2",
                    at + timedelta(minutes=5),
                    tournament_id=t,
                    stage_id="br-finals",
                    match_id=match,
                    revision=2,
                    result={"format": "battle_royale", "sequence": n, "placements": corrected},
                )
            )
            # The producer retried revision 1 after a timeout: a late duplicate that must change nothing.
            events.append(events[-3] | {})
        if n == 4:
            victim = placements[3]["team_id"]
            events.append(
                _event(
                    "result.overridden",
                    f"{t}:{match}:override",
                    at + timedelta(minutes=8),
                    tournament_id=t,
                    stage_id="br-finals",
                    match_id=match,
                    actor="referee-ana",
                    reason="placement recorded after a crash; replay shows 2nd",
                    team_id=victim,
                    placement=2,
                    kills=placements[3]["kills"],
                )
            )

    # Best-of-3 round robin among four teams.
    events.append(
        _event(
            "stage.configured",
            f"{t}:groups:config",
            at,
            tournament_id=t,
            stage_id="group-a",
            name="Group A",
            rules={"format": "series_group", "best_of": 3},
        )
    )
    pairs = [(a, b) for i, a in enumerate(GROUP_TEAMS) for b in GROUP_TEAMS[i + 1 :]]
    for s, (a, b) in enumerate(pairs, start=1):
        series = f"grp-a-s{s}"
        wins = {a: 0, b: 0}
        game = 0
        while max(wins.values()) < 2:
            game += 1
            at += timedelta(minutes=40)
            winner = a if rng.random() < 0.55 else b
            wins[winner] += 1
            events.append(
                _event(
                    "match.completed",
                    f"{t}:{series}:g{game}",
                    at,
                    tournament_id=t,
                    stage_id="group-a",
                    match_id=f"{series}-g{game}",
                    revision=1,
                    result={
                        "format": "series_game",
                        "series_id": series,
                        "team_ids": [a, b],
                        "game_number": game,
                        "winner_team_id": winner,
                    },
                )
            )
    if swiss:
        at = _swiss_stage(events, t, rng, at)
    events.append(
        _event(
            "tournament.completed", f"{t}:completed", at + timedelta(minutes=5), tournament_id=t, stage_id="br-finals"
        )
    )
    return events


SWISS_STAGE = "swiss-a"
SWISS_TEAMS = [f"sw-{i:02d}" for i in range(1, 9)]


def _swiss_stage(events: list[dict[str, Any]], t: str, rng: random.Random, at: datetime) -> datetime:
    """Plays a Swiss stage the way a platform would: each round's matches are the ones the pipeline announces
    (``round.paired``), which the pure engine here computes alike from the same results."""
    rules = {
        "format": "swiss",
        "seeds": {team: i for i, team in enumerate(SWISS_TEAMS, start=1)},
        "wins_to_advance": 2,
        "losses_to_eliminate": 2,
    }
    events.append(
        _event(
            "stage.configured",
            f"{t}:swiss:config",
            at,
            tournament_id=t,
            stage_id=SWISS_STAGE,
            name="Swiss",
            rules=rules,
        )
    )
    swiss_rules, seeds, prior = swiss_rules_from_dict(rules)
    stage = SwissStage(SWISS_STAGE, seeds, swiss_rules, prior)
    while (round_ := stage.next_round()) is not None:
        stage.set_round(round_)
        for pairing in round_.pairings:
            wins = {pairing.team_a: 0, pairing.team_b: 0}
            game = 0
            while max(wins.values()) < pairing.best_of // 2 + 1:
                game += 1
                at += timedelta(minutes=35)
                # The better seed wins a little more often, as in a real stage.
                winner = pairing.team_a if rng.random() < 0.6 else pairing.team_b
                wins[winner] += 1
                events.append(
                    _event(
                        "match.completed",
                        f"{t}:{pairing.series_id}:g{game}",
                        at,
                        tournament_id=t,
                        stage_id=SWISS_STAGE,
                        match_id=f"{pairing.series_id}-g{game}",
                        revision=1,
                        result={
                            "format": "series_game",
                            "series_id": pairing.series_id,
                            "team_ids": [pairing.team_a, pairing.team_b],
                            "game_number": game,
                            "winner_team_id": winner,
                            "score": {
                                pairing.team_a: 13 if winner == pairing.team_a else 9,
                                pairing.team_b: 13 if winner == pairing.team_b else 9,
                            },
                        },
                    )
                )
            a_won = wins[pairing.team_a] > wins[pairing.team_b]
            k = pairing.best_of // 2 + 1
            stage.update(
                SeriesResult(
                    pairing.series_id,
                    pairing.team_a,
                    pairing.team_b,
                    pairing.best_of,
                    "completed",
                    k if a_won else wins[pairing.team_a],
                    wins[pairing.team_b] if a_won else k,
                    pairing.team_a if a_won else pairing.team_b,
                )
            )
    return at
