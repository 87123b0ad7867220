"""Restoring tables from their changelogs (crownstream/engine/recovery.py), against the real broker under exactly_once:
a worker with no local state restores every change its predecessor committed, a restarted worker restores only
what its local state lacks, and both answer with what a recompute from the events gives."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration.test_standings_cluster import (
    TOURNAMENTS,
    expected_standings,
    produce,
    standings_of,
    tournament_events,
    wait_until,
)

pytestmark = pytest.mark.slow


def restored_records(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("crownstream_table_restored_records_total{")
    )


def restores_logged(worker) -> list[int]:
    text = worker.log_path.read_text(errors="replace")
    return [int(n) for n in re.findall(r"restored (\d+) changelog records", text)]


def assert_all_standings(url: str, events: list[dict], what: str) -> None:
    for t in TOURNAMENTS:
        expected = expected_standings(events, t)
        wait_until(lambda: standings_of(url, t) == expected, 60, f"standings of {t} on {what}")


async def test_an_empty_worker_restores_every_committed_change_and_a_restart_only_the_missing(
    settings, topics, start_worker
):
    first = start_worker()
    events = tournament_events()
    await produce(settings, events)
    assert_all_standings(first.url, events, "the first worker")
    assert restored_records(first.url) == 0, "a worker starting on empty changelogs restored records"
    assert first.stop(40) == 0

    # A new worker (its own, empty state directory) restores from the changelogs alone, written transactionally:
    # every changelog partition ends in a commit marker the restore consumer must read past, never receive.
    second = start_worker()
    restored = restored_records(second.url)
    assert restored > 0, f"the new worker restored nothing; log: {second.log_path}\n{second.tail()}"
    assert_all_standings(second.url, events, "a worker restored from the changelogs")

    # The same worker restarted keeps its RocksDB state: nothing committed since, so nothing to restore.
    assert second.stop(40) == 0
    second.start().wait_ready()
    assert restored_records(second.url) == 0, f"log: {second.log_path}\n{second.tail()}"
    assert_all_standings(second.url, events, "the restarted worker")

    # Events after the restart land on the restored state exactly once (a retried half changes nothing).
    more = tournament_events()[len(events) // 2 :]
    await produce(settings, more)
    assert_all_standings(second.url, events, "the restarted worker after a replay")
    print(f"\nrestore: {restored:.0f} records restored by the new worker; restarts restored {restores_logged(second)}")
