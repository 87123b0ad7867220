"""Hook points of the demo for the notification and delivery side: start local stand-ins for the channels, give
the workers the environment that points the sinks at them, produce what must be there before the tournament
(players' preferences), report per-channel counts for the progress line, and at the end reconcile what the
pipeline requested with what the receivers got. ``Channels`` does none of it (the demo works the same without
it); ``crownstream.demo.channels.LocalChannels`` is what ``make demo`` uses.
"""

from __future__ import annotations

from typing import Any

from crownstream.settings import Settings


class Channels:
    name = "none"

    def start(self, settings: Settings) -> dict[str, str]:
        """Start the peers; returns env for the workers (e.g. CROWNSTREAM_SMTP_PORT)."""
        return {}

    def describe(self) -> str:
        return "no delivery channels"

    def prepare(self, settings: Settings) -> list[dict[str, Any]]:
        """Events to produce before the tournament (preferences with contact addresses …)."""
        return []

    def wait_prepared(self, worker_urls: list[str], timeout: float) -> bool:
        return True

    def counts(self) -> dict[str, int]:
        """Channel -> deliveries the receivers got so far (the progress line)."""
        return {}

    async def reconcile(self, settings: Settings, timeout: float, on_progress=None):
        """The summary's per-channel comparison (crownstream.demo.reconcile.Reconciliation), or None."""
        return None

    def stop(self) -> str | None:
        """Stop the peers; returns a line for the output, if any."""
        return None


def channels(keep_database: bool = False, enabled: bool = True) -> Channels:
    if not enabled:
        return Channels()
    from crownstream.demo.channels import LocalChannels

    return LocalChannels(keep_database=keep_database)
