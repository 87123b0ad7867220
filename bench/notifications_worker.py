"""A Crownstream worker with only the notification fan-out agents (no sinks, no standings): what the
notifications benchmark measures. Configured by the usual CROWNSTREAM_* variables.

    python -m bench.notifications_worker worker
"""

from __future__ import annotations

from crownstream.agents import audiences, notifications, notifications_users  # noqa: F401  (registers agents)
from crownstream.app import app
from crownstream.web import views  # noqa: F401  (/metrics: the benchmark waits on the consumed counts)

if __name__ == "__main__":
    app.main()
