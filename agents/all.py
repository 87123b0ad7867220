"""Imports every agent module so that their agents, tables and views register on the app."""

from crownstream.agents import standings, tournament_events  # noqa: F401
from crownstream.web import standings as standings_views, views  # noqa: F401
from crownstream.web import leaderboard  # noqa: F401
from crownstream.agents import deliveries  # noqa: F401  (with its views: web/feed.py, web/webhooks.py)
