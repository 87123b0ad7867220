"""What starting a child process of the project needs: a free local port and the environment variables that
reproduce a ``Settings`` in the child. Used by the demo, the development peers, the tests and the benchmarks."""

from __future__ import annotations

import json
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
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            text = json.dumps(value)  # complex settings are read from the environment as JSON
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        env[f"CROWNSTREAM_{name.upper()}"] = text
    return env
