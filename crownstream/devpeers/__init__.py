"""Local stand-ins for the sinks' destinations, on loopback only: a webhook receiver that verifies every
Standard Webhooks signature, an SMTP server (aiosmtpd), and a Discord execute-webhook endpoint that enforces
Discord's size limits and rate-limits with its documented headers and 429 answers.

Used by the sinks' tests, the benchmark and the demo. Each runs its own event loop in a thread, so it works
the same from synchronous code, from a test's event loop, or beside a worker::

    with WebhookReceiver() as receiver:
        url = receiver.add("alice", secret)        # http://127.0.0.1:<port>/hooks/alice
        ...
        receiver.successes_by_id()                 # webhook-id -> 2xx answers given
"""

from crownstream.devpeers.discord import DiscordStandIn
from crownstream.devpeers.smtp import SmtpPeer
from crownstream.devpeers.webhooks import WebhookReceiver

__all__ = ["DiscordStandIn", "SmtpPeer", "WebhookReceiver"]
