"""The peers section of ``python -m bench``: both peers on the baselines' topic, one after the other."""

from __future__ import annotations

from bench.common import BOOTSTRAP, Row
from bench.peers import kafka_streams, quix


async def run(topic: str, count: int, bootstrap: str = BOOTSTRAP) -> list[Row]:
    rows = []
    for peer in (quix, kafka_streams):
        row = await peer.run(topic, count, bootstrap)
        print(f"  {row.name}: {row.note if 'error' in row.extra else f'{row.rate:,.0f}/s'}", flush=True)
        rows.append(row)
    return rows
