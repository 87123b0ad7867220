"""What starting a child process of the project needs: a free local port and the environment variables that
reproduce a ``Settings`` in the child. Used by the demo, the development peers, the tests and the benchmarks."""

from __future__ import annotations

import socket

from crownstream.settings import Settings


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; loopback unless ``host`` says otherwise)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"CROWNSTREAM_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env
