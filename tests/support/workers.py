"""Crownstream workers as real processes (``crownstream worker``), so tests can kill -9 them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from crownstream.processes import free_port, settings_env
from crownstream.settings import Settings
from tests.support.services import REPO

CROWNSTREAM = str(REPO / ".venv" / "bin" / "crownstream")

#: The metrics that tell, in a failure message, whether a worker reads its partitions and restores its tables
#: (its commit gates are in /ops/assignment).
REPORTED_METRICS = (
    "crownstream_events_in_total",
    "crownstream_consumer_lag",
    "crownstream_stale_records_dropped_total",
    "crownstream_table_state_wipes_total",
    "crownstream_table_restored_records_total",
)


@dataclass
class Worker:
    settings: Settings
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    _terminated: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return self.settings.worker_url

    @property
    def staff_headers(self) -> dict[str, str]:
        """The staff credential of this worker (for /ops/* and other staff routes)."""
        return {"Authorization": f"Bearer {self.settings.staff_token}"} if self.settings.staff_token else {}

    def start(self) -> Worker:
        self._terminated = False
        env = {**os.environ, **settings_env(self.settings), **self.extra_env, "PYTHONUNBUFFERED": "1"}
        exe = CROWNSTREAM if os.path.exists(CROWNSTREAM) else "crownstream"
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [exe, "worker", "--loglevel", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> Worker:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; log: {self.log_path}\n{self.tail()}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=2)
                last = r.text
                if r.status_code == 200:
                    return self
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready after {timeout}s (last: {last}); log: {self.log_path}\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no commit — a crash as the kernel would deliver it."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM, once: the worker commits, leaves the group and exits."""
        if self.process and self.process.poll() is None and not self._terminated:
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the exit; SIGKILL past ``timeout``. Returns the exit code."""
        self.terminate()
        if self.process and self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None

    def self_report(self) -> str:
        """For a failure message: the worker's readiness, assignment and reading/commit metrics, as it tells them."""
        parts = [f"worker {self.url} (log {self.log_path}):"]
        for path in ("/readyz", "/ops/assignment"):
            try:
                r = httpx.get(self.url + path, headers=self.staff_headers, timeout=10)
                parts.append(f"  {path}: {r.status_code} {r.text[:3000]}")
            except httpx.HTTPError as exc:
                parts.append(f"  {path}: {exc!r}")
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=10).text
        except httpx.HTTPError as exc:
            return "\n".join([*parts, f"  /metrics: {exc!r}"])
        parts += [f"  {line}" for line in text.splitlines() if line.startswith(REPORTED_METRICS)]
        return "\n".join(parts)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The log's last lines, without the HTTP client's request lines (a forwarding worker logs one per query)."""
        try:
            text = self.log_path.read_text(errors="replace")
            return "\n".join([line for line in text.splitlines() if "httpx: HTTP Request" not in line][-lines:])
        except FileNotFoundError:
            return ""


def wait_all_ready(workers: list[Worker], timeout: float = 90.0) -> list[Worker]:
    """Wait until every one of ``workers`` (started together, ``start_worker(wait=False)``) is ready: a test that
    needs several workers does not pay their starts one after the other (most of a start waits on the broker)."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.wait_ready(max(1.0, deadline - time.monotonic()))
    return workers


def kill_all(workers: list[Worker]) -> None:
    """SIGKILL ``workers`` (a test's teardown): each test has its own group, topics and database, so a clean leave
    protects nothing the next test sees, and waiting for one (closing every RocksDB store, the last commit) cost
    seconds per test. Tests that assert a clean leave stop their workers themselves (``Worker.stop``)."""
    for worker in workers:
        worker.kill()


def worker_settings(base: Settings, **overrides) -> Settings:
    """``base`` on a port of its own (its RocksDB folder is named after the app id and the port)."""
    return base.model_copy(update={"web_port": free_port(), **overrides})
