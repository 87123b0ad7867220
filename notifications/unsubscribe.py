"""One-click unsubscribe (RFC 8058): who may unsubscribe whom from what, and what the preferences become.

The link in an email's ``List-Unsubscribe`` header names the user and the notification type and carries a
key: an HMAC of both under a deployment secret. Without the secret nobody can forge a link for another
user, and the key never expires (mail is read late). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac

from crownstream.notifications.catalog import CATALOG
from crownstream.notifications.preferences import Preferences

EMAIL = "email"
ALL_TYPES = "all"  # the link of a digest: every non-critical email at once


def unsubscribe_key(secret: str, user_id: str, notification_type: str) -> str:
    material = f"unsubscribe\x1f{user_id}\x1f{notification_type}".encode()
    return hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()


def key_is_valid(secret: str, user_id: str, notification_type: str, key: str) -> bool:
    return hmac.compare_digest(unsubscribe_key(secret, user_id, notification_type), key or "")


def without_email(prefs: Preferences, notification_type: str) -> Preferences:
    """The preferences after unsubscribing ``notification_type`` (or every type, for ``all``) from email.

    A type keeps its other channels. ``all`` is a hard unsubscribe from email: honoured even for critical
    types, as the law requires for a user who said no to all mail."""
    if notification_type == ALL_TYPES:
        if EMAIL in prefs.unsubscribed_channels:
            return prefs
        return prefs.model_copy(update={"unsubscribed_channels": [*prefs.unsubscribed_channels, EMAIL]})
    if notification_type not in CATALOG:
        raise ValueError(f"unknown notification type {notification_type!r}; known: {sorted(CATALOG)} or 'all'")
    current = prefs.types.get(notification_type, sorted(CATALOG[notification_type].default_channels))
    kept = [channel for channel in current if channel != EMAIL]
    return Preferences.model_validate(
        {**prefs.model_dump(mode="json"), "types": {**prefs.types, notification_type: kept}}
    )
