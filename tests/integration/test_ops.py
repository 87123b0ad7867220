"""Operator commands against real workers and the real broker: ``standings rebuild``, ``ops lag``,
``ops assignment``; and a graceful SIGTERM: the worker commits and leaves the group, so its partitions move
at once (not after the session timeout) and no event is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from crownstream.demo.tournament import SWISS_STAGE, demo_tournament
from crownstream.processes import settings_env
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import TOURNAMENT_EVENTS
from tests.support.workers import CROWNSTREAM, wait_all_ready

pytestmark = pytest.mark.slow

TOURNAMENTS = ["ops-a", "ops-b", "ops-c", "ops-d"]


def br_only(tournament_id: str, seed: int, matches: int = 4, swiss: bool = False) -> list[dict]:
    return [
        e
        for e in demo_tournament(tournament_id, seed=seed, br_matches=matches, swiss=swiss)
        if e.get("stage_id") != "group-a" and e["type"] != "tournament.completed"
    ]


def swiss_decided(url: str, tournament_id: str) -> bool:
    r = httpx.get(f"{url}/tournaments/{tournament_id}/groups/{SWISS_STAGE}", timeout=10)
    return r.status_code == 200 and all(row["status"] != "playing" for row in r.json()["standings"])


async def produce(settings, events: list[dict]) -> None:
    async with EventProducer(settings) as producer:
        for event in events:
            await producer.send(event)


def cli(settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([CROWNSTREAM, *args], env=env, capture_output=True, text=True, timeout=timeout)


def served(url: str, tournament_id: str) -> list[tuple[str, int]] | None:
    r = httpx.get(
        f"{url}/tournaments/{tournament_id}/standings", params={"stage": "br-finals", "limit": 1000}, timeout=10
    )
    return [(s["team_id"], s["total_points"]) for s in r.json()["standings"]] if r.status_code == 200 else None


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def matches_played(url: str, tournament_id: str) -> int:
    r = httpx.get(f"{url}/tournaments/{tournament_id}/standings", params={"stage": "br-finals"}, timeout=10)
    return len(r.json()["matches"]) if r.status_code == 200 else 0


async def test_rebuild_lag_and_assignment_commands(settings, topics, start_worker):
    first, second = wait_all_ready([start_worker(wait=False), start_worker(wait=False)])
    # A battle-royale stage and a Swiss stage whose rounds the workers pair and announce into the topic.
    events = br_only("ops-a", seed=3, swiss=True)
    await produce(settings, events)
    wait_until(lambda: matches_played(first.url, "ops-a") == 4, 90, "4 matches applied")
    wait_until(lambda: swiss_decided(first.url, "ops-a"), 90, "the Swiss stage played out")

    done = cli(settings, "standings", "rebuild", "ops-a", "--worker", second.url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("matches the standings") == 2  # both stages, each against the other worker's answer
    br_lines = done.stdout.split("ops-a / br-finals")[1]  # printed after the series stages
    listed = [line.split()[1] for line in br_lines.splitlines() if line.strip()[:1].isdigit()]
    assert listed == [team for team, _ in served(first.url, "ops-a")]
    assert f"ops-a / {SWISS_STAGE} (swiss): 8 teams, 10 series" in done.stdout

    done = cli(settings, "standings", "rebuild", "ops-a", "--stage", "no-such-stage", "--no-compare")
    assert done.returncode == 2 and "no stage 'no-such-stage'" in done.stderr

    source = TOURNAMENT_EVENTS.full_name(settings)

    last_lag: list[str] = []

    def caught_up():
        out = cli(settings, "ops", "lag", "--json")
        last_lag[:] = [out.stdout[-1500:], out.stderr[-1500:]]
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        mine = [r for r in rows if r["topic"] == source]
        return mine if len(mine) == settings.topic_partitions and all(r["lag"] == 0 for r in mine) else None

    try:
        rows = wait_until(caught_up, 60, "the group's committed offsets to reach the end of every partition")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast `ops lag`: {last_lag}") from None
    # The topic also holds the three rounds the workers announced (round.paired), each in a transaction whose
    # commit marker takes an offset too.
    assert len(events) + 3 <= sum(r["end"] for r in rows) <= len(events) + 6

    out = cli(settings, "ops", "assignment", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["state"] == "Stable"
    assert sorted(m["url"] for m in report["members"]) == sorted([first.url, second.url])
    actives = [a for m in report["members"] for a in m["worker"]["actives"] if a.startswith(source + "[")]
    assert sorted(actives) == sorted(f"{source}[{p}]" for p in range(settings.topic_partitions))  # each once

    text = cli(settings, "ops", "assignment")
    assert first.url in text.stdout and second.url in text.stdout and "actives:" in text.stdout

    # The same picture in each worker's Prometheus metrics: lag per source partition, keys per table.
    from crownstream.streams.partitioning import partition_for

    home_partition = partition_for("ops-a", settings.topic_partitions)
    home = f"{source}[{home_partition}]"
    owner = next(m["url"] for m in report["members"] if home in m["worker"]["actives"])
    metrics = httpx.get(f"{owner}/metrics", timeout=10).text
    lag_lines = [
        line
        for line in metrics.splitlines()
        if line.startswith("crownstream_consumer_lag{") and f'topic="{source}"' in line
    ]
    assert any(f'partition="{home_partition}"' in line for line in lag_lines), lag_lines
    assert all(line.endswith(" 0.0") for line in lag_lines), lag_lines
    keys = {
        line.split('table="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("crownstream_table_keys{")
    }
    assert keys["stages"] >= 1 and keys["br-results"] >= 4 and keys["tournaments"] >= 1, keys

    # A worker with nothing left to process says so: flow on, no event inside a commit gate, no commit waiting.
    def settled():
        view = httpx.get(f"{owner}/ops/assignment", headers=first.staff_headers, timeout=10).json()
        gates = view["commit_gates"]
        return (
            view
            if view["flow"] == {"consumer": True, "app": True}
            and gates
            and all(g == {"inside": 0, "committers": 0} for g in gates.values())
            else None
        )

    view = wait_until(settled, 30, "the owner's commit gates to be idle with flow on")
    assert any(tid.endswith(f"-{home_partition}") for tid in view["commit_gates"]), view["commit_gates"]


async def test_sigterm_commits_leaves_the_group_and_loses_nothing(settings, topics, start_worker):
    # A long session timeout: if the stopped worker did not leave the group, its partitions would stay
    # unassigned for 45 s; a graceful leave moves them as soon as the survivor rejoins.
    slow_failover = settings.model_copy(update={"session_timeout_s": 45.0})
    survivor, leaving = wait_all_ready([start_worker(wait=False, session_timeout_s=45.0) for _ in range(2)])
    events = {t: br_only(t, seed=n, matches=4) for n, t in enumerate(TOURNAMENTS)}
    split = {t: next(i for i, e in enumerate(events[t]) if e.get("match_id") == "br-m3") for t in TOURNAMENTS}
    await produce(slow_failover, [e for t in TOURNAMENTS for e in events[t][: split[t]]])
    for t in TOURNAMENTS:
        wait_until(lambda: matches_played(survivor.url, t) == 2, 90, f"2 matches of {t}")

    stopped_at = time.monotonic()
    code = leaving.stop(timeout=30)
    assert code is not None and code != -signal.SIGKILL, f"the worker did not stop on SIGTERM within 30 s (exit {code})"
    source = TOURNAMENT_EVENTS.full_name(settings)

    def owns_everything():
        r = httpx.get(f"{survivor.url}/ops/assignment", headers=survivor.staff_headers, timeout=5).json()
        mine = [a for a in r["actives"] if a.startswith(source + "[")]
        return (
            len(mine) == settings.topic_partitions and httpx.get(f"{survivor.url}/readyz", timeout=5).status_code == 200
        )

    wait_until(owns_everything, 40, "the survivor to own every partition")
    moved_after = time.monotonic() - stopped_at
    assert moved_after < 40  # well inside the 45 s session timeout: the worker left, it was not timed out

    await produce(slow_failover, [e for t in TOURNAMENTS for e in events[t][split[t] :]])
    from tests.integration.test_standings_cluster import expected_standings

    for t in TOURNAMENTS:
        expected = expected_standings(events[t], t)
        wait_until(lambda: served(survivor.url, t) == expected, 90, f"final standings of {t} on the survivor")
    print(f"\npartitions moved {moved_after:.1f}s after SIGTERM (session timeout 45 s)")
