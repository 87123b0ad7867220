"""Imports every agent module so that their agents and tables register on the app (the HTTP views that read
them register in ``crownstream.web.all``, which imports this module first).

The order is the order handlers of one event type run in: the notification handler registers last."""

from crownstream.agents import series, standings, tournament_events  # noqa: F401
from crownstream.agents import deliveries  # noqa: F401  (its views: web/feed.py, web/webhooks.py)

# Their views: web/preferences.py, web/notifications.py.
from crownstream.agents import audiences, notifications, notifications_users  # noqa: F401
