"""``python -m bench [--events N] [--only NAME ...]``: every benchmark in one run, against the local broker.

Each section is a coroutine ``(ctx) -> list[Row]`` registered in ``SECTIONS``; the baselines section runs
first because every other row is printed beside the raw-aiokafka ceiling it measures in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench import circuit as circuit_bench
from bench import latency as latency_bench
from bench import naive_faust_row, notifications, producer_api, raw_consume
from bench import rebalance as rebalance_bench
from bench import restart as restart_bench
from bench import sinks as sinks_bench
from bench import standings as standings_bench
from bench.common import Row, create_topic, fill_topic, print_table, run_id, save
from bench.peers import rows as peer_rows


@dataclass
class Context:
    run_id: str
    events: int
    produce_events: int
    notify_users: int = 100_000
    notify_events: int = 20_000
    ceiling: Row | None = None
    team_results: str | None = None  # the baselines' filled topic, which the peers section reads again
    notes: list[str] = field(default_factory=list)


async def baselines(ctx: Context) -> list[Row]:
    topic = f"bench-{ctx.run_id}-team-results"
    await create_topic(topic, 4)
    print(f"filling {topic} with {ctx.events} team results …", flush=True)
    await fill_topic(topic, ctx.events)
    ctx.team_results = topic
    ctx.ceiling = await raw_consume.run(topic, ctx.events)
    print(f"  {ctx.ceiling.name}: {ctx.ceiling.rate:,.0f}/s", flush=True)
    floor = await naive_faust_row.run(topic, ctx.events)
    print(f"  {floor.name}: {floor.rate:,.0f}/s", flush=True)
    return [ctx.ceiling, floor]


async def peers(ctx: Context) -> list[Row]:
    assert ctx.team_results is not None, "the baselines section fills the topic the peers read"
    return await peer_rows.run(ctx.team_results, ctx.events)


async def producer(ctx: Context) -> list[Row]:
    return [await producer_api.run(f"bench-{ctx.run_id}.", ctx.produce_events)]


async def notification_fan_out(ctx: Context) -> list[Row]:
    return await notifications.run(f"bench-{ctx.run_id}-n.", ctx.notify_users, ctx.notify_events)


SINK_SIZES = {"webhooks": 5_000, "emails": 2_000}
RESTART_KEYS = {"keys": 1_000_000}

# name -> section, in the order they run. Add a section by appending one line here.
SECTIONS: dict[str, Callable[[Context], Awaitable[list[Row]]]] = {
    "baselines": baselines,
    "peers": peers,
    "producer": producer,
    "notifications": notification_fan_out,
    "sinks": lambda ctx: sinks_bench.run(SINK_SIZES["webhooks"], SINK_SIZES["emails"]),
    "restart": lambda ctx: restart_bench.run(ctx.run_id, RESTART_KEYS["keys"]),
    "standings": lambda ctx: standings_bench.run(ctx.run_id, ctx.events),
    "latency": lambda ctx: latency_bench.section(ctx.run_id),
    "rebalance": lambda ctx: rebalance_bench.section(ctx.run_id),
    "circuit": lambda ctx: circuit_bench.run(),
}


async def main(
    events: int, produce_events: int, only: list[str] | None, notify_users: int = 100_000, notify_events: int = 20_000
) -> None:
    ctx = Context(run_id(), events, produce_events, notify_users, notify_events)
    rows: list[Row] = []
    for name, section in SECTIONS.items():
        if only and name not in only and name != "baselines":
            continue
        print(f"[{name}]", flush=True)
        rows.extend(await section(ctx))
    text = print_table(rows, ctx.ceiling)
    path = save(rows, text)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="team results in the consume benchmarks")
    parser.add_argument("--produce-events", type=int, default=20_000, help="events for the producer-API row")
    parser.add_argument("--only", nargs="*", choices=None, help="sections to run (baselines always run)")
    parser.add_argument("--notify-users", type=int, default=100_000, help="users reached by the broadcast row")
    parser.add_argument("--notify-events", type=int, default=20_000, help="events of the mixed notifications row")
    parser.add_argument("--sink-webhooks", type=int, default=5_000, help="deliveries of the webhook sink row")
    parser.add_argument("--sink-emails", type=int, default=2_000, help="emails of the email sink row")
    parser.add_argument("--restart-keys", type=int, default=1_000_000, help="table keys of the restart-to-ready row")
    parser.add_argument(
        "--commit-interval",
        type=float,
        default=None,
        help="the workers' commit interval in seconds (CROWNSTREAM_COMMIT_INTERVAL_S; default: the setting's)",
    )
    args = parser.parse_args()
    if args.commit_interval is not None:
        # Every section's workers read their settings from the environment (or build them from it).
        os.environ["CROWNSTREAM_COMMIT_INTERVAL_S"] = str(args.commit_interval)
    SINK_SIZES.update(webhooks=args.sink_webhooks, emails=args.sink_emails)
    RESTART_KEYS.update(keys=args.restart_keys)
    asyncio.run(main(args.events, args.produce_events, args.only, args.notify_users, args.notify_events))
