"""Everything a worker runs: every agent and table (``crownstream.agents.all``), then every HTTP view, in one
place. ``crownstream worker`` imports this module; so does any test that needs the whole route table."""

from crownstream.agents import all as _agents  # noqa: F401  (first: handlers register in its order)
from crownstream.web import openapi, standings as standings_views, views  # noqa: F401
from crownstream.web import leaderboard  # noqa: F401
from crownstream.web import feed as _feed_views, webhooks as _webhook_views  # noqa: F401  (feed, webhook endpoints)
from crownstream.web import notifications as notification_views, preferences as preference_views  # noqa: F401
from crownstream.web import unsubscribe  # noqa: F401  (one-click unsubscribe of email links)
