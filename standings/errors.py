"""The errors of the standings domain (crownstream.standings), under ``StandingsError``."""

from __future__ import annotations

from crownstream.errors import CrownstreamError


class StandingsError(CrownstreamError):
    """Root of the errors of crownstream.standings."""


class StreamClosed(StandingsError):
    """The hub closed the subscription (this worker stopped owning the stage, or is shutting down)."""


class PlainDataError(StandingsError, ValueError):
    """Plain data that does not have the shape of the type asked for: not a JSON object, a required field
    missing, a field that is not one, or a nested value of the wrong kind (``serialization.from_plain``)."""
