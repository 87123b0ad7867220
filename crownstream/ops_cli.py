"""``crownstream standings rebuild`` and ``crownstream ops lag|assignment`` (logic in crownstream/ops.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import click
import httpx
import orjson

from crownstream import ops
from crownstream.ops_series import SeriesStageRecompute, compare_series, recompute_series_stages
from crownstream.settings import get_settings


@click.group("standings")
def standings() -> None:
    """Standings maintenance."""


@standings.command("rebuild")
@click.argument("tournament_id")
@click.option("--stage", default=None, help="Only this stage (default: every stage).")
@click.option(
    "--worker",
    "worker_url",
    default=None,
    help="Compare with the standings this worker serves (default: this host's CROWNSTREAM_CANONICAL_URL).",
)
@click.option("--no-compare", is_flag=True, help="Only print the recompute.")
@click.option("--json", "as_json", is_flag=True, help="Print the recompute as JSON.")
def standings_rebuild(
    tournament_id: str, stage: str | None, worker_url: str | None, no_compare: bool, as_json: bool
) -> None:
    """Recompute TOURNAMENT_ID's standings from its events in the topic, with the pure engine, and compare them
    with what the workers serve: battle-royale leaderboards, round-robin groups, Swiss stages and brackets. Exits 1
    if they differ, 2 if the tournament has no such stage."""
    settings = get_settings()
    events = asyncio.run(ops.read_tournament_events(tournament_id, settings))
    stages = ops.recompute_tournament(events, tournament_id)
    series_stages = recompute_series_stages(events, tournament_id)
    if stage is not None:
        stages = {k: v for k, v in stages.items() if k == stage}
        series_stages = {k: v for k, v in series_stages.items() if k == stage}
    if not stages and not series_stages:
        click.echo(
            f"no stage{f' {stage!r}' if stage else ''} found in {len(events)} events of tournament {tournament_id!r}",
            err=True,
        )
        sys.exit(2)
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    **{s: [t.to_dict() for t in r.standings] for s, r in stages.items()},
                    **{s: r.rows for s, r in series_stages.items()},
                }
            ).decode()
        )
    differ = _series_rebuild(tournament_id, series_stages, worker_url or settings.worker_url, no_compare, as_json)
    for stage_id, result in stages.items():
        if not as_json:
            click.echo(
                f"{tournament_id} / {stage_id}: {len(result.standings)} teams over {result.matches} matches "
                f"(from {len(events)} records)"
            )
            for rank, team in enumerate(result.standings, start=1):
                click.echo(
                    f"  {rank:>3}. {team.team_id:<24} {team.total_points:>5} pts  "
                    f"{team.kills:>4} kills  {team.matches_played} played"
                )
        for line in result.skipped:
            click.echo(f"  skipped invalid event {line}", err=True)
        if no_compare:
            continue
        url = worker_url or settings.worker_url
        served = partial(ops.live_standings, url, tournament_id, stage_id)
        differ |= _report(url, partial(ops.compare, result.standings), served)
    if differ:
        sys.exit(1)


def _series_rebuild(
    tournament_id: str, stages: dict[str, SeriesStageRecompute], url: str, no_compare: bool, as_json: bool
) -> bool:
    """Print each series stage's recompute and compare it with the worker's; True if any differs."""
    differ = False
    for stage_id, result in stages.items():
        if not as_json:
            click.echo(
                f"{tournament_id} / {stage_id} ({result.format}): {len(result.rows)} teams, {result.series} series"
            )
            for row in result.rows:
                rank = "-" if row["rank"] is None else row["rank"]
                extra = row.get("record") or row.get("place") or f"{row.get('points')} pts"
                click.echo(f"  {rank:>3}. {row['team_id']:<24} {extra}  {row.get('decided_by') or ''}")
        for line in result.skipped:
            click.echo(f"  skipped {line}", err=True)
        if no_compare:
            continue
        served = partial(ops.live_group_standings, url, tournament_id, stage_id)
        differ |= _report(url, partial(compare_series, result), served)
    return differ


def _report(url: str, differences: Callable[[Any], list[str]], served: Callable[[], Any]) -> bool:
    """Print how a recompute compares (``differences``) with what the worker at ``url`` serves; True if they
    differ."""
    try:
        problems = differences(served())
    except httpx.HTTPError as exc:
        click.echo(f"could not ask {url} for the live standings ({exc}); pass --worker URL or --no-compare", err=True)
        sys.exit(3)
    if not problems:
        click.echo(f"matches the standings {url} serves", err=True)
        return False
    click.echo(f"DIFFERS from {url} ({len(problems)} lines):", err=True)
    for line in problems:
        click.echo(f"  {line}", err=True)
    return True


@click.group("ops")
def ops_group() -> None:
    """The consumer group: lag and partition ownership."""


@ops_group.command("lag")
@click.option("--json", "as_json", is_flag=True)
def ops_lag(as_json: bool) -> None:
    """Committed offset, end offset and lag of every partition the workers' group reads."""
    settings = get_settings()
    rows = asyncio.run(ops.group_lag(settings))
    if as_json:
        for r in rows:
            click.echo(
                orjson.dumps(
                    {"topic": r.topic, "partition": r.partition, "committed": r.committed, "end": r.end, "lag": r.lag}
                ).decode()
            )
        return
    if not rows:
        click.echo(
            f"group {settings.app_id!r} has committed no offsets (no worker has run, or wrong CROWNSTREAM_APP_ID)"
        )
        return
    click.echo(f"{'topic':<56} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
    for r in rows:
        click.echo(
            f"{r.topic:<56} {r.partition:>4} {r.committed if r.committed is not None else '-':>10} "
            f"{r.end:>10} {r.lag:>8}"
        )
    click.echo(f"total lag: {sum(r.lag for r in rows)}")


@ops_group.command("assignment")
@click.option("--json", "as_json", is_flag=True)
def ops_assignment(as_json: bool) -> None:
    """Each worker of the group: its URL, the partitions the broker assigned it, and (asked over HTTP) which
    of them it processes (actives) and which it only replicates (standbys)."""
    settings = get_settings()
    state, members = asyncio.run(ops.group_members(settings))
    views = {m.member_id: ops.worker_assignment(m.url, settings.staff_token) if m.url else None for m in members}
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "group": settings.app_id,
                    "state": state,
                    "members": [
                        {
                            "member_id": m.member_id,
                            "host": m.client_host,
                            "url": m.url,
                            "partitions": m.partitions,
                            "worker": views[m.member_id],
                        }
                        for m in members
                    ],
                }
            ).decode()
        )
        return
    click.echo(f"group {settings.app_id!r}: {state}, {len(members)} workers")
    for m in sorted(members, key=lambda m: m.url or ""):
        click.echo(f"- {m.url or '(no URL)'}  host {m.client_host}  member {m.member_id}")
        view = views[m.member_id]
        if view is None:
            for topic, parts in sorted(m.partitions.items()):
                click.echo(f"    assigned {topic}: {parts}")
            click.echo(
                "    (the worker did not answer /ops/assignment: down, or CROWNSTREAM_STAFF_TOKEN unset/wrong here)"
            )
            continue
        click.echo(f"    actives:  {', '.join(view['actives']) or '-'}")
        click.echo(f"    standbys: {', '.join(view['standbys']) or '-'}")


COMMANDS = (standings, ops_group)
