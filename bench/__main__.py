"""``python -m bench [--events N]``: every benchmark in one run, against the local broker."""

from __future__ import annotations

import argparse
import asyncio

from bench import naive_faust_row, producer_api, raw_consume
from bench.common import create_topic, fill_topic, print_table, run_id, save


async def main(events: int, produce_events: int) -> None:
    rid = run_id()
    topic = f"bench-{rid}-team-results"
    await create_topic(topic, 4)
    print(f"filling {topic} with {events} team results …", flush=True)
    await fill_topic(topic, events)

    rows = []
    ceiling = await raw_consume.run(topic, events)
    rows.append(ceiling)
    print(f"  {ceiling.name}: {ceiling.rate:,.0f}/s", flush=True)
    floor = await naive_faust_row.run(topic, events)
    rows.append(floor)
    print(f"  {floor.name}: {floor.rate:,.0f}/s", flush=True)
    produced = await producer_api.run(f"bench-{rid}.", produce_events)
    rows.append(produced)

    text = print_table(rows, ceiling)
    path = save(rows, text)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="team results in the consume benchmarks")
    parser.add_argument("--produce-events", type=int, default=20_000, help="events for the producer-API row")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.produce_events))
