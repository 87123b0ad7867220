"""Preference resolution: a notification type + a user's preferences + now -> per channel, send now, fold into
the digest, defer past quiet hours, or skip (with the reason, for metrics). Pure and table-testable.

Rules, in order:
  1. channels = the user's per-type choice, else the type's defaults. Critical types always keep their
     default channels (a user may add channels, not remove the payment receipt).
  2. hard unsubscribes remove a channel for every type, critical included (the law's word is final);
     opt-outs remove it for non-critical types.
  3. a channel with no address (email, Discord) is skipped: never a guessed address.
  4. non-critical: a type in the user's digest list goes to the digest on email/Discord; inside quiet hours
     email/Discord wait until they end. In-app (a feed the user pulls) and webhooks (machines) are never held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from crownstream.notifications.catalog import DISCORD, EMAIL, NotificationType
from crownstream.notifications.clock import quiet_until
from crownstream.notifications.preferences import Preferences
from crownstream.schemas.deliveries import CHANNELS

HELD_CHANNELS = frozenset({EMAIL, DISCORD})  # those that interrupt people; in-app and webhooks never wait

Mode = Literal["single", "digest", "deferred"]
SkipReason = Literal["not_selected", "opted_out", "unsubscribed", "no_address"]


@dataclass(frozen=True, slots=True)
class Route:
    channel: str
    mode: Mode
    release_at: datetime | None = None  # deferred: when quiet hours end


@dataclass(frozen=True, slots=True)
class Skip:
    channel: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class Resolution:
    routes: tuple[Route, ...]
    skipped: tuple[Skip, ...]

    def by_channel(self) -> dict[str, Route | Skip]:
        return {**{s.channel: s for s in self.skipped}, **{r.channel: r for r in self.routes}}


def has_address(prefs: Preferences, channel: str) -> bool:
    if channel == EMAIL:
        return bool(prefs.contact.email)
    if channel == DISCORD:
        return bool(prefs.contact.discord_webhook_url)
    return True  # in-app: the user id; webhook: the platform's configured endpoint


def resolve(kind: NotificationType, prefs: Preferences, now: datetime) -> Resolution:
    chosen = prefs.types.get(kind.name)
    channels = set(kind.default_channels if chosen is None else chosen)
    if kind.critical:
        channels |= kind.default_channels
    routes: list[Route] = []
    skipped: list[Skip] = []
    quiet_end = None if kind.critical else quiet_until(prefs, now)
    digested = not kind.critical and prefs.digest.enabled and kind.name in prefs.digest.types
    for channel in CHANNELS:  # fixed order: deterministic output
        if channel not in channels:
            skipped.append(Skip(channel, "not_selected"))
        elif channel in prefs.unsubscribed_channels:
            skipped.append(Skip(channel, "unsubscribed"))
        elif channel in prefs.opt_out_channels and not kind.critical:
            skipped.append(Skip(channel, "opted_out"))
        elif not has_address(prefs, channel):
            skipped.append(Skip(channel, "no_address"))
        elif digested and channel in HELD_CHANNELS:
            routes.append(Route(channel, "digest"))
        elif quiet_end is not None and channel in HELD_CHANNELS:
            routes.append(Route(channel, "deferred", quiet_end))
        else:
            routes.append(Route(channel, "single"))
    return Resolution(tuple(routes), tuple(skipped))
