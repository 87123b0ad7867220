"""The Quix Streams row: bench/peers/quix_peer.py in its own venv, on the baselines' topic."""

from __future__ import annotations

from bench.common import BOOTSTRAP, Row
from bench.peers import quix_env
from bench.peers.runner import run_peer, state_dir
from bench.peers.scoring import KILL_POINTS, TABLE

PEER = quix_env.REQUIREMENTS.with_name("quix_peer.py")


async def run(topic: str, count: int, bootstrap: str = BOOTSTRAP, timeout: float = 600) -> Row:
    interpreter = quix_env.python()
    group = f"quix-{topic}"
    workdir = state_dir(group)
    argv = [str(interpreter), str(PEER), bootstrap, topic, str(count), str(workdir / "state"), group]
    argv += [",".join(map(str, TABLE.points)), str(KILL_POINTS)]
    return await run_peer(
        f"Quix Streams {quix_env.version(interpreter)}: team totals (exactly-once)",
        argv,
        count,
        workdir,
        "stateful apply, state keyed tournament+team; its default 5 s commit; totals checked",
        timeout,
    )
