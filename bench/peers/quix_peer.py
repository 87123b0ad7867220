"""The Quix Streams peer of the standings fold; runs in its own venv (bench/peers/quix_env.py), so it imports
nothing from Crownstream: the point table and everything else come as arguments.

    python quix_peer.py BOOTSTRAP TOPIC COUNT STATE_DIR CONSUMER_GROUP POINT_TABLE KILL_POINTS

One Application, exactly-once, its other settings at their defaults (commit every 5 s); a stateful apply keeps
each team's total in the store scoped by the record key (the tournament), under the team id. Prints the
RESULT and TOTALS lines bench/peers/runner.py reads.
"""

from __future__ import annotations

import json
import sys
import time

from quixstreams import Application


def main(bootstrap: str, topic: str, count: int, state_dir: str, group: str, table: list[int], kill_points: int):
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    source = app.topic(topic, key_deserializer="str", value_deserializer="json")
    progress = {"seen": 0, "first": 0.0, "last": 0.0}
    # The last total written per team, as the store gave it back: the store is read on every record, so a
    # lost or repeated update shows in these values.
    totals: dict[str, int] = {}

    def fold(value: dict, state) -> int:
        team = value["team_id"]
        placement = value["placement"]
        points = (table[placement - 1] if 1 <= placement <= len(table) else 0) + value["kills"] * kill_points
        total = state.get(team, 0) + points
        state.set(team, total)
        totals[f"{value['tournament_id']}/{team}"] = total
        progress["seen"] += 1
        if progress["seen"] == 1:
            progress["first"] = time.perf_counter()
        if progress["seen"] == count:
            progress["last"] = time.perf_counter()
        return total

    app.dataframe(source).apply(fold, stateful=True)
    # Stops after `count` outputs (one per record here), committing the last checkpoint on the way out.
    app.run(count=count, collect=False)
    elapsed = progress["last"] - progress["first"]
    print("RESULT " + json.dumps({"seen": progress["seen"], "elapsed": elapsed}), flush=True)
    print("TOTALS " + json.dumps(totals), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    b, t, c, d, g, pt, kp = sys.argv[1:]
    main(b, t, int(c), d, g, [int(p) for p in pt.split(",")], int(kp))
