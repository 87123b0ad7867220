"""The errors of the notification rules (crownstream.notifications), under ``NotificationsError``."""

from __future__ import annotations

from crownstream.errors import CrownstreamError


class NotificationsError(CrownstreamError):
    """Root of the errors of crownstream.notifications."""


class InvalidPreferences(NotificationsError, ValueError):
    """A user's notification preferences that cannot be used; the message says which field and why."""


class InvalidCatalog(NotificationsError, ValueError):
    """A notification type or throttle in the catalog that cannot be used; the message says which and why."""
