"""``crownstream trace EVENT_ID``: every record and delivery one input event caused (crownstream/trace_report.py)."""

from __future__ import annotations

import asyncio
import re
import sys

import click
import orjson

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_window(text: str) -> float | None:
    """``90``, ``30m``, ``24h``, ``7d`` -> seconds; ``all`` -> None (every retained record)."""
    if text == "all":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration: use e.g. 90, 30m, 24h, 7d or all")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@click.command("trace")
@click.argument("event_id")
@click.option(
    "--since",
    "window",
    default="24h",
    show_default=True,
    help="How far back to read the topics (90, 30m, 24h, 7d, all); the event must be inside it.",
)
@click.option("--user", "user_id", default=None, help="Only what concerns this user, and the hops that led to it.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON document.")
def trace(event_id: str, window: str, user_id: str | None, as_json: bool) -> None:
    """Follow EVENT_ID through the pipeline: each hop's records (topic, partition, offset, time), each delivery
    request with its dedup key and ledger state, each user and channel left out and why, and dead letters.
    Reads the topics and the ledger only: no consumer group, nothing committed, no tracing backend."""
    from crownstream.trace_report import render, trace_event

    report = asyncio.run(trace_event(event_id, parse_window(window)))
    if user_id is not None:
        report = report.for_user(user_id)
    click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() if as_json else render(report))
    if not report.hops:
        sys.exit(f"nothing of event {event_id} found in the last {window}: check the id, or widen --since")
