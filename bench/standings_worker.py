"""A Crownstream worker with only the standings agents and their views (no notification fan-out, no sinks):
what ``bench/standings.py`` measures, so its rows are the standings engine's cost, not the whole pipeline's.

Run as:  python -m bench.standings_worker worker   (configured by the same CROWNSTREAM_* variables)
"""

from crownstream.agents import series, standings, tournament_events  # noqa: F401  (registers agents and tables)
from crownstream.app import app
from crownstream.web import standings as standings_views  # noqa: F401  (registers the standings views)
from crownstream.web import views  # noqa: F401  (registers /readyz and /metrics, which the benchmark waits on)

if __name__ == "__main__":
    app.main()
