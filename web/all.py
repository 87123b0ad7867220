"""Everything a worker runs: every agent and table (``crownstream.agents.all``), then every HTTP view, in one
place. ``crownstream worker`` imports this module; so does any test that needs the whole route table.

The order of the imports does not matter (handlers run in the order of their stage, agents/tournament_events.py).
Besides the pages and queries: the feed and webhook endpoints (feed, webhooks) and one-click unsubscribe of
email links (unsubscribe)."""

from crownstream.agents import all as _agents  # noqa: F401  (every agent and table)
from crownstream.web import (  # noqa: F401  (imported for the views they register)
    feed,
    feed_events,
    leaderboard,
    notifications,
    openapi,
    preferences,
    standings,
    unsubscribe,
    views,
    webhooks,
)
