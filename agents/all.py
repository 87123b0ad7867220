"""Imports every agent module so that their agents and tables register on the app (the HTTP views that read
them register in ``crownstream.web.all``).

The order of the imports does not matter: handlers of one event type run in the order of their stage
(``crownstream.agents.tournament_events.Stage``; the table is ``handler_table()``). The views of deliveries are
in web/feed.py and web/webhooks.py; those of notifications in web/preferences.py and web/notifications.py."""

from crownstream.agents import (  # noqa: F401  (imported for their registrations)
    audiences,
    deliveries,
    notifications,
    notifications_users,
    series,
    standings,
    tournament_events,
)
