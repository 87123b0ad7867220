"""Hook points of the demo for the notification and delivery side: start local stand-ins for the channels
(SMTP server, webhook receiver, Discord stand-in from ``crownstream.devpeers``), give the workers the
environment that points the sinks at them, and report per-channel delivery counts for the progress line and
the summary. The default does nothing and reports nothing; the demo works the same without it.

To wire the channels in, implement ``Channels`` and return it from ``channels()``:

    class LocalChannels(Channels):
        def start(self) -> dict[str, str]:        # env for the workers, e.g. CROWNSTREAM_SMTP_PORT
        def prepare(self, settings) -> list[dict]: # events to stream first (preferences with addresses …)
        def counts(self) -> dict[str, int]:       # channel -> deliveries the receivers got
        def stop(self) -> None
"""

from __future__ import annotations

from typing import Any

from crownstream.settings import Settings


class Channels:
    name = "none"

    def start(self) -> dict[str, str]:
        return {}

    def prepare(self, settings: Settings) -> list[dict[str, Any]]:
        return []

    def counts(self) -> dict[str, int]:
        return {}

    def stop(self) -> None:
        pass


def channels() -> Channels:
    return Channels()
