"""The Quix Streams peer's own virtualenv, made (or remade when quix-requirements.txt changes) on first use.

It is separate from the project's venv because quixstreams pins pydantic and pydantic-settings below the
versions Crownstream runs on; the peer is a process of its own anyway, so nothing else needs to import it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bench.peers.runner import STATE

REQUIREMENTS = Path(__file__).with_name("quix-requirements.txt")
VENV = STATE / "quix-venv"


def python() -> Path:
    """The venv's interpreter, after installing the pinned requirements into it if they are not there yet."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker = VENV / ".requirements-sha256"
    interpreter = VENV / "bin" / "python"
    if marker.exists() and marker.read_text() == digest and interpreter.exists():
        return interpreter
    print(f"  making the Quix Streams venv in {VENV} (once) …", flush=True)
    # The base interpreter of the project's venv: the same Python version, without the project's packages.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
    done = subprocess.run(
        [str(interpreter), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"pip could not install {REQUIREMENTS} into {VENV}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    marker.write_text(digest)
    return interpreter


def version(interpreter: Path) -> str:
    out = subprocess.run(
        [str(interpreter), "-c", "import importlib.metadata as m; print(m.version('quixstreams'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


if __name__ == "__main__":
    print(python())
