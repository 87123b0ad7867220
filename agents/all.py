"""Imports every agent module so that their agents, tables and views register on the app."""

from crownstream.agents import tournament_events  # noqa: F401
from crownstream.web import views  # noqa: F401
