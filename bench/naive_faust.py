"""The floor: the Faust agent anyone would write first — decode, then one table update per event.

Run as a worker process by bench/__main__.py:  python -m bench.naive_faust worker
It writes the time of its first and last event to $BENCH_OUT when it has seen $BENCH_COUNT events.
"""

from __future__ import annotations

import json
import os
import time

import faust

TOPIC = os.environ["BENCH_TOPIC"]
COUNT = int(os.environ["BENCH_COUNT"])
OUT = os.environ["BENCH_OUT"]
GUARANTEE = os.environ.get("BENCH_GUARANTEE", "at_least_once")

app = faust.App(
    f"naive-{TOPIC}",
    broker=f"kafka://{os.environ.get('CROWNSTREAM_KAFKA_BOOTSTRAP', '127.0.0.1:19092')}",
    store="rocksdb://",
    processing_guarantee=GUARANTEE,
    web_port=int(os.environ.get("BENCH_WEB_PORT", "6999")),
    datadir=os.environ["BENCH_DATADIR"],
    consumer_auto_offset_reset="earliest",
    topic_partitions=4,
)
source = app.topic(TOPIC, value_serializer="json", key_serializer="raw")
points = app.Table("team-points", default=int)

state = {"seen": 0, "first": None}


@app.agent(source)
async def fold(stream):
    async for value in stream:
        if state["first"] is None:
            state["first"] = time.time()
        points[value["team_id"]] += 17 - value["placement"] + value["kills"]
        state["seen"] += 1
        if state["seen"] == COUNT:
            with open(OUT, "w") as fh:
                json.dump({"first": state["first"], "last": time.time(), "seen": state["seen"]}, fh)


if __name__ == "__main__":
    app.main()
