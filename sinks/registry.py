"""The channel -> sink table: adding a channel is adding its module here."""

from __future__ import annotations

from crownstream.settings import Settings
from crownstream.sinks.base import Sink
from crownstream.sinks.ledger import Ledger


def build_sinks(settings: Settings, ledger: Ledger, notify_disabled=None, notify_gone=None) -> dict[str, Sink]:
    from crownstream.sinks.discord import DiscordSink
    from crownstream.sinks.email import EmailSink
    from crownstream.sinks.feed import FeedSink
    from crownstream.sinks.webhooks import WebhookSink

    sinks: list[Sink] = [
        FeedSink(settings, ledger),
        WebhookSink(settings, ledger, notify_disabled=notify_disabled),
        EmailSink(settings, ledger),
        DiscordSink(settings, ledger, notify_gone=notify_gone),
    ]
    return {sink.channel: sink for sink in sinks}
