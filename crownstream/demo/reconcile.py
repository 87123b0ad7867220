"""Pure comparison of what the pipeline asked the sinks to deliver with what the receivers got.

"Requested" is the set of committed delivery requests on ``crownstream.deliveries.<channel>`` (one per dedup key:
a request committed twice is one delivery). "Received" is what a receiver counted, by the id a receiver
deduplicates by: ``webhook-id`` (webhooks), the ``Message-ID`` (email), the feed row's key (in-app). Discord
messages carry no id, so a message is identified by what makes it unique to one request: the webhook it went to
(one per user), its title, timestamp (the event's time) and notification type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CHANNEL_ORDER = ("email", "discord", "webhook", "in_app")


@dataclass(frozen=True)
class ChannelCheck:
    channel: str
    requested: int
    received: int  # distinct ids the receiver got
    missing: int  # requested, never received
    duplicates: int  # deliveries of an id beyond its first (what a receiver that did not dedupe would see twice)
    unexpected: int  # received, never requested

    @property
    def matches(self) -> bool:
        return self.requested == self.received and not (self.missing or self.duplicates or self.unexpected)


def check(channel: str, requested: Iterable[Any], received: Mapping[Any, int]) -> ChannelCheck:
    wanted = set(requested)
    got = {k for k, n in received.items() if n > 0}
    return ChannelCheck(
        channel,
        len(wanted),
        len(got),
        len(wanted - got),
        sum(n - 1 for n in received.values() if n > 1),
        len(got - wanted),
    )


def moment(value: str | datetime) -> datetime:
    """Timestamps compare as instants: ``Z`` and ``+00:00`` spell the same one."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def discord_identity(user_id: str, title: str, created_at: str | datetime, notification_type: str) -> tuple:
    return (user_id, title, moment(created_at), notification_type)


def discord_request_identity(request: Mapping[str, Any]) -> tuple:
    return discord_identity(request["user_id"], request["title"], request["created_at"], request["notification_type"])


def discord_message_identity(hook: str, payload: Mapping[str, Any]) -> tuple:
    """``hook`` is the webhook's id in the stand-in, which the demo names after the user it belongs to."""
    embed = payload["embeds"][0]
    footer = embed.get("footer", {}).get("text", "")
    return discord_identity(hook, embed["title"], embed["timestamp"], footer.rpartition(" · ")[2])


def message_id_key(message_id: str) -> str:
    """``<dedup key@domain>`` -> dedup key."""
    return message_id.strip().strip("<>").partition("@")[0]


@dataclass
class Reconciliation:
    checks: list[ChannelCheck] = field(default_factory=list)
    feed_items: int = 0
    samples: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return bool(self.checks) and all(c.matches for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {c.channel: c.received for c in self.checks}

    def lines(self) -> list[str]:
        out = [
            "Deliveries by channel (requested = committed delivery requests; received = distinct ids the "
            "receivers got):"
        ]
        for c in sorted(self.checks, key=lambda c: CHANNEL_ORDER.index(c.channel)):
            out.append(
                f"   {c.channel:<8} requested {c.requested:>5}  received {c.received:>5}  missing {c.missing}"
                f"  duplicates {c.duplicates}  unexpected {c.unexpected}  {'match' if c.matches else 'MISMATCH'}"
            )
        out.append(f"In-app feed items: {self.feed_items}")
        for label in ("email subject", "Discord title", "webhook id"):
            if label in self.samples:
                out.append(f"Sample {label}: {self.samples[label]}")
        out += self.notes
        out.append(f"Deliveries match the requests: {'yes' if self.matches else 'NO'}")
        return out
