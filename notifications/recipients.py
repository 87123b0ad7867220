"""A user's stored preferences -> what fan-out needs per notification: the resolution per notification type and
the contact as a request carries it. Pure; the agent keeps one ``Recipient`` per user in memory.

Most users share their preferences apart from the contact (the defaults, or one of a few common choices), so
a ``Recipient`` is split in two: a ``Profile`` (everything resolution depends on: the preferences without the
contact, plus which addresses exist), shared by every user with the same one and validated once, and the
user's contact, pre-encoded as the JSON a delivery request embeds. Per user that is a reference and a short
byte string, so a worker can hold every user of its partitions; and a broadcast resolves each notification
type once per profile, not once per user.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from crownstream.notifications.catalog import NotificationType
from crownstream.notifications.preferences import DEFAULTS, ContactInfo, Preferences
from crownstream.notifications.routing import Resolution, resolve


class Profile:
    """Preferences as resolution sees them. ``prefs`` is one user's validated preferences; its contact is only
    read for which addresses exist, which is part of what makes profiles equal."""

    __slots__ = ("_resolutions", "prefs")

    def __init__(self, prefs: Preferences) -> None:
        self.prefs = prefs
        self._resolutions: dict[str, Resolution] = {}

    def resolve(self, kind: NotificationType, now: datetime) -> Resolution:
        if self.prefs.quiet_hours is not None:  # depends on the time: not cached
            return resolve(kind, self.prefs, now)
        cached = self._resolutions.get(kind.name)
        if cached is None:
            cached = self._resolutions[kind.name] = resolve(kind, self.prefs, now)
        return cached


class Recipient:
    __slots__ = ("contact", "profile")

    def __init__(self, profile: Profile, contact: bytes) -> None:
        self.profile, self.contact = profile, contact

    @property
    def prefs(self) -> Preferences:
        """The timing part of the preferences (timezone, digest, quiet hours): not the contact, which may be
        another user's of the same profile. The contact is ``contact_dict()``."""
        return self.profile.prefs

    def contact_dict(self) -> dict[str, Any]:
        contact: dict[str, Any] = orjson.loads(self.contact)
        return contact

    def resolve(self, kind: NotificationType, now: datetime) -> Resolution:
        return self.profile.resolve(kind, now)


def _contact_json(contact: ContactInfo, timezone: str) -> bytes:
    # Preferences.contact_for_delivery().model_dump(mode="json"), without building the model: the fields of
    # schemas.deliveries.Contact in its order (unit-tested byte-identical).
    return orjson.dumps(
        {
            "email": contact.email,
            "discord_webhook_url": contact.discord_webhook_url,
            "display_name": contact.display_name,
            "locale": contact.locale,
            "timezone": timezone,
        }
    )


class Profiles:
    """Interns profiles, and builds a user's ``Recipient`` from their stored (or just validated) preferences."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, Profile] = {}
        self.default = self.from_prefs(DEFAULTS)

    def __len__(self) -> int:
        return len(self._by_key)

    def clear(self) -> None:
        self._by_key.clear()
        self.default = self.from_prefs(DEFAULTS)

    @staticmethod
    def _key(document: dict[str, Any], contact: ContactInfo) -> bytes:
        rest = {k: v for k, v in document.items() if k != "contact"}
        addresses = (bool(contact.email), bool(contact.discord_webhook_url))  # as routing.has_address sees them
        return orjson.dumps([rest, addresses], option=orjson.OPT_SORT_KEYS)

    def from_prefs(self, prefs: Preferences) -> Recipient:
        """From preferences already validated (the preferences agent's write)."""
        document = prefs.model_dump(mode="json")
        key = self._key(document, prefs.contact)
        profile = self._by_key.get(key)
        if profile is None:
            profile = self._by_key[key] = Profile(prefs)
        return Recipient(profile, _contact_json(prefs.contact, prefs.timezone))

    def from_stored(self, stored: dict[str, Any]) -> Recipient:
        """From the table's value (written validated by the preferences agent). The whole document is validated
        once per profile; per user only the contact, which is all that differs."""
        contact = ContactInfo.model_validate(stored.get("contact") or {})
        key = self._key(stored, contact)
        profile = self._by_key.get(key)
        if profile is None:
            profile = self._by_key[key] = Profile(Preferences.model_validate(stored))
        return Recipient(profile, _contact_json(contact, profile.prefs.timezone))
