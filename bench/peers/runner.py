"""Runs one peer process to completion and turns what it prints into a checked bench row.

A peer prints ``RESULT {"seen": N, "elapsed": seconds}`` once it has processed all N records (timed from the
first record processed to the last, as every other row of the table) and ``TOTALS {"tournament/team": points}``
read back from its state; anything else it writes goes to a log under the peer's state folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import orjson

from bench.common import Row
from bench.peers.scoring import expected_totals, mismatch

REPO = Path(__file__).resolve().parent.parent.parent
STATE = Path(os.environ.get("CROWNSTREAM_STATE_DIR", REPO / ".state")) / "bench"


def state_dir(name: str) -> Path:
    """A fresh folder for one peer run's local state and log (removed by ``run_peer`` when the run succeeds)."""
    path = STATE / "peers" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def check(name: str, count: int, result: dict, totals: dict[str, int], note: str) -> Row:
    """The row of a peer run, or an ERROR row with no rate when it processed the wrong number of records or its
    totals differ from the independent sum."""
    problem = None
    if result.get("seen") != count:
        problem = f"processed {result.get('seen')} records, not {count}"
    else:
        problem = mismatch(expected_totals(count), totals)
    if problem:
        print(f"  ERROR {name}: {problem}", file=sys.stderr, flush=True)
        return Row(name, count, 0.0, note=f"ERROR: wrong result, no rate: {problem}", extra={"error": problem})
    return Row(name, count, float(result["elapsed"]), note=note, extra={"verified_teams": len(totals)})


async def run_peer(name: str, argv: list[str], count: int, workdir: Path, note: str, timeout: float) -> Row:
    log_path = workdir / "peer.log"
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=log, cwd=str(REPO), start_new_session=True
        )
        result: dict | None = None
        totals: dict[str, int] | None = None
        try:
            async with asyncio.timeout(timeout):
                assert proc.stdout is not None
                async for line in proc.stdout:
                    if line.startswith(b"RESULT "):
                        result = orjson.loads(line[len("RESULT ") :])
                    elif line.startswith(b"TOTALS "):
                        totals = orjson.loads(line[len("TOTALS ") :])
                    else:
                        log.write(line)
                code = await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TimeoutError(f"{name} did not process {count} records in {timeout:.0f} s; log: {log_path}") from None
    if code != 0 or result is None or totals is None:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} exited with code {code} without a complete result; log {log_path}:\n{tail}")
    row = check(name, count, result, totals, note)
    if "error" not in row.extra:
        shutil.rmtree(workdir, ignore_errors=True)
    return row
