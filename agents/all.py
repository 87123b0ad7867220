"""Imports every agent module so that their agents, tables and views register on the app."""

from crownstream.agents import series, standings, tournament_events  # noqa: F401
from crownstream.web import openapi, standings as standings_views, views  # noqa: F401
from crownstream.web import leaderboard  # noqa: F401
from crownstream.agents import deliveries  # noqa: F401  (with its views: web/feed.py, web/webhooks.py)
from crownstream.agents import audiences, notifications, notifications_users  # noqa: F401  (with web/preferences.py, web/notifications.py)
from crownstream.web import notifications as notification_views, preferences as preference_views  # noqa: F401
from crownstream.web import unsubscribe  # noqa: F401  (one-click unsubscribe of email links)
