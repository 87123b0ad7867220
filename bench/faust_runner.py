"""Runs a Faust worker module as a process until it reports the time it took to see N events."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row


async def run_worker_until_done(
    module: str, topic: str, count: int, name: str, env: dict[str, str], timeout: float = 300
) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        full_env = {
            **os.environ,
            "BENCH_TOPIC": topic,
            "BENCH_COUNT": str(count),
            "BENCH_OUT": str(out),
            "BENCH_DATADIR": tmp,
            **env,
        }
        log = open(Path(tmp) / "worker.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "worker", "--loglevel", "warn"],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while not out.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"{module} exited: {(Path(tmp) / 'worker.log').read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{module} did not finish {count} events in {timeout}s")
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.1)
            result = json.loads(out.read_text())
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        return Row(name, result["seen"], result["last"] - result["first"], extra=result)
