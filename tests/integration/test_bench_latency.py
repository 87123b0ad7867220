"""The end-to-end latency row of the bench (bench/latency.py) on a light load against the real broker and
PostgreSQL: every ranking notification the worker committed for the subscribed teams reaches the receiver once,
signed, and is timed from the send of the match that triggered it."""

from __future__ import annotations

import math

import pytest

from bench import common, latency
from bench.standings import lobby


def test_each_lobby_holds_exactly_one_sampled_team_and_a_ranking_id_names_its_match():
    sampled = set(latency.sampled_teams(20))
    assert len(sampled) == 50
    for match in range(200):
        teams = {p["team_id"] for p in lobby("t", match, 20)["result"]["placements"]}
        assert len(teams & sampled) == 1, match
    assert latency.trigger_of("lat-0:m12:rank:team-0040") == "lat-0:m12"


@pytest.mark.slow
async def test_the_latency_row_times_every_expected_notification(kafka_bootstrap: str, postgres_dsn: str, unique_id):
    # The bench reaches the services through its own settings; both must name the tests' services.
    assert kafka_bootstrap == common.BOOTSTRAP and postgres_dsn.endswith(common.POSTGRES)
    # 5 lobbies a second for 2 s: light enough for a loaded machine, and every lobby notifies a sampled team.
    [row] = await latency.run(unique_id, results_per_s=100, seconds=2.0, commit_interval_s=0.2)
    extra = row.extra
    assert extra["missing"] == 0 and extra["duplicates"] == 0 and extra["bad_signatures"] == 0, row.note
    assert extra["samples"] >= 10, row.note  # at least one notification per lobby
    assert 0 < extra["p50_ms"] <= extra["p99_ms"] and math.isfinite(extra["p99_ms"]), row.note
    assert extra["commit_interval_s"] == 0.2
    assert row.count == 10 * 20 and "p99" in row.note
