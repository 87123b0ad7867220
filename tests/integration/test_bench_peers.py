"""The bench's peers (bench/peers/) against the real broker: Quix Streams and Kafka Streams fold a small topic of
team results into exactly the per-team totals summed independently in Python, and a wrong total is reported as
an error row without a rate."""

from __future__ import annotations

import pytest

from bench import common
from bench.peers import kafka_streams, quix
from bench.peers.runner import check
from bench.peers.scoring import expected_totals

COUNT = 2_000


def test_a_wrong_total_gives_an_error_row_without_a_rate():
    totals = expected_totals(COUNT)
    assert check("peer", COUNT, {"seen": COUNT, "elapsed": 0.5}, totals, "ok").rate == COUNT / 0.5

    key = next(iter(totals))
    wrong = {**totals, key: totals[key] + 1}
    row = check("peer", COUNT, {"seen": COUNT, "elapsed": 0.5}, wrong, "ok")
    assert row.rate == 0 and row.note.startswith("ERROR") and key in row.note

    missing = dict(list(totals.items())[1:])
    assert "1 teams missing" in check("peer", COUNT, {"seen": COUNT, "elapsed": 0.5}, missing, "ok").note
    assert "processed 1999" in check("peer", COUNT, {"seen": COUNT - 1, "elapsed": 0.5}, totals, "ok").note


@pytest.mark.slow
async def test_peers_compute_the_standings_totals(kafka_bootstrap: str, unique_id: str):
    problem = kafka_streams.missing_tools()
    if problem:
        pytest.skip(f"the Kafka Streams peer cannot run here: {problem}")
    # The bench's helpers fill the topic through its own bootstrap setting; both must name the tests' broker.
    assert kafka_bootstrap == common.BOOTSTRAP
    topic = f"test-{unique_id}-peers"
    await common.create_topic(topic, 4)
    await common.fill_topic(topic, COUNT)
    for peer in (quix, kafka_streams):
        row = await peer.run(topic, COUNT, kafka_bootstrap, timeout=60)
        assert "error" not in row.extra, row.note
        assert row.count == COUNT and row.seconds > 0
        assert row.extra["verified_teams"] == len(expected_totals(COUNT))
