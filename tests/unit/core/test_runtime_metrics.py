"""Consumer lag from positions and high-water marks (crownstream/runtime_metrics.py)."""

from __future__ import annotations

from faust.types import TP

from crownstream.runtime_metrics import lag_by_partition, source_partitions


def test_lag_is_highwater_minus_position_per_partition():
    a, b = TP("events", 0), TP("events", 1)
    assert lag_by_partition({a: 10, b: 7}, {a: 15, b: 7}) == {a: 5, b: 0}


def test_partitions_without_position_or_highwater_are_unknown_not_zero():
    a, b, c = TP("events", 0), TP("events", 1), TP("events", 2)
    assert lag_by_partition({a: None, b: 3, c: 4}, {a: 9, b: None, c: 4}) == {c: 0}


def test_a_position_past_a_stale_highwater_is_no_negative_lag():
    a = TP("events", 0)
    assert lag_by_partition({a: 12}, {a: 10}) == {a: 0}


def test_changelogs_are_not_sources():
    tps = [TP("app-stages-changelog", 0), TP("tournament-events", 1), TP("tournament-events", 0)]
    assert source_partitions(tps) == [TP("tournament-events", 0), TP("tournament-events", 1)]
