"""``python -m crownstream.demo`` end to end against the real broker and PostgreSQL (small and quick: three
battle-royale matches, no pacing): it must finish, verify its standings against a recompute, stop both worker
processes, and on Ctrl-C stop them too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support.services import REPO

pytestmark = pytest.mark.slow


def demo_env(kafka_bootstrap: str, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWNSTREAM_")}
    return {**env, "CROWNSTREAM_KAFKA_BOOTSTRAP": kafka_bootstrap, "CROWNSTREAM_DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1"}


def worker_pids(output: str) -> list[int]:
    return [int(p) for p in re.findall(r"\(pid (\d+)\)", output)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes only once reaped; the demo waits for its children, so expect none.
    return False


def run_demo(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run the demo; if it overruns, stop it as a user would (Ctrl-C) so that it stops its workers too."""
    demo = subprocess.Popen([sys.executable, "-m", "crownstream.demo", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = demo.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=90)
        raise AssertionError(f"the demo did not finish in {timeout}s:\n{out[-4000:]}\n{err[-2000:]}")
    return demo.returncode, out, err


@pytest.mark.timeout(600)
async def test_demo_runs_to_completion_and_leaves_nothing_running(kafka_bootstrap, database_url, tmp_path):
    code, out, err = run_demo(["--pace", "0", "--br-matches", "3", "--partitions", "2", "--no-keep-serving",
                               "--no-progress", "--state-dir", str(tmp_path / "demo")],
                              demo_env(kafka_bootstrap, database_url), timeout=420)
    assert code == 0, f"demo exited {code}\n{out[-4000:]}\n{err[-3000:]}"
    assert "Standings equal a recompute from the events: yes" in out
    assert "PROBLEM" not in out
    # Three matches, one corrected, one retried duplicate, and a staff override were each shown live.
    assert out.count("▶ br-m") == 5 and "corrected by the referee" in out and "must change nothing" in out
    final = re.search(r"final standings \((\d+) teams\)", out)
    assert final and int(final.group(1)) == 16
    assert "1 standings.finalized" in out and "3 payout.distributed" in out
    assert "Dead-lettered records: 0" in out
    assert re.search(r"Live leaderboard: http://127\.0\.0\.1:\d+/tournaments/demo-cup/leaderboard\?stage=br-finals", out)
    assert re.search(r"Group A.*\n\s+1\. \w+", out)
    assert "nothing left running" in out
    pids = worker_pids(out)
    assert len(pids) == 2 and all(gone(p) for p in pids)


@pytest.mark.timeout(600)
async def test_ctrl_c_stops_the_workers(kafka_bootstrap, database_url, tmp_path):
    log = tmp_path / "demo.out"
    with open(log, "w") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "crownstream.demo", "--pace", "1", "--partitions", "2", "--no-progress",
             "--state-dir", str(tmp_path / "demo")],
            env=demo_env(kafka_bootstrap, database_url), cwd=REPO, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while "streaming" not in log.read_text():
            assert demo.poll() is None, f"demo exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"demo never started streaming:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        demo.send_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
        code = demo.wait(90)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            demo.wait(90)
    out = log.read_text()
    assert code == 130, out[-3000:]
    assert "interrupted" in out and "nothing left running" in out
    pids = worker_pids(out)
    assert len(pids) == 2 and all(gone(p) for p in pids)
