"""The errors of the agents (crownstream.agents), under ``AgentsError``."""

from __future__ import annotations

from crownstream.errors import CrownstreamError
from crownstream.schemas.codec import Rejection


class AgentsError(CrownstreamError):
    """Root of the errors of crownstream.agents."""


class RejectRecord(AgentsError):
    """Raised by a handler that finds its (valid) event unusable for a reason of its own — e.g. free-form
    preferences that do not parse: the record goes to the DLQ with this rejection instead of ``handler_error``."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


class UnknownOp(AgentsError, ValueError):
    """A record of an internal topic with an operation its agent does not know (a bug: it is dead-lettered)."""
