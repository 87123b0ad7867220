"""Worker processes of the demo: real ``crownstream worker`` processes, each in a session of its own so that
the terminal's Ctrl-C reaches only the demo, which then stops them in order (SIGTERM: commit and leave the
group; SIGKILL only if one does not exit in time)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from crownstream.processes import free_port, settings_env
from crownstream.settings import Settings


def crownstream_command() -> list[str]:
    beside = Path(sys.executable).with_name("crownstream")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crownstream")
    if found:
        return [found]
    return [sys.executable, "-m", "crownstream.cli"]


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.settings.worker_url

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **settings_env(self.settings), **self.extra_env, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*crownstream_command(), "worker", "--loglevel", "info"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float) -> int | None:
        if not self.alive():
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(10)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class WorkerGroup:
    """N workers of one consumer group; ``stop_all`` is safe to call any number of times."""

    def __init__(self, base: Settings, count: int, state_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.workers = [
            WorkerProcess(
                base.model_copy(update={"web_port": free_port()}),
                state_dir / f"worker-{n + 1}.log",
                dict(extra_env or {}),
            )
            for n in range(count)
        ]

    def start_all(self) -> None:
        for worker in self.workers:
            worker.start()

    def wait_ready(self, timeout: float, on_wait=None) -> None:
        deadline = time.monotonic() + timeout
        while not all(w.ready() for w in self.workers):
            for w in self.workers:
                if not w.alive():
                    raise RuntimeError(
                        f"worker {w.url} exited with {w.process.returncode}; its log "
                        f"({w.log_path}) ends with:\n{w.tail()}"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not ready after {timeout:.0f}s; logs in {self.workers[0].log_path.parent}")
            if on_wait:
                on_wait()
            time.sleep(0.5)

    def stop_all(self, timeout: float = 30.0) -> list[int | None]:
        # All at once: each leaves the group on its own, and they stop in parallel rather than in turn.
        for worker in self.workers:
            if worker.alive():
                worker.process.send_signal(signal.SIGTERM)
        return [worker.stop(timeout) for worker in self.workers]

    def running(self) -> list[int]:
        return [w.pid for w in self.workers if w.alive()]
