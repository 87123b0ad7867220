"""The errors of the sinks (crownstream.sinks), under ``SinksError``.

A delivery's own failure is not an exception: a sink returns its outcome (sent, failed and retried, or dead
with a reason; sinks/base.py). These are refusals of a target before anything is sent."""

from __future__ import annotations

from crownstream.errors import CrownstreamError


class SinksError(CrownstreamError):
    """Root of the errors of crownstream.sinks."""


class TargetRefused(SinksError, ValueError):
    """``reason`` is safe to show to whoever wrote the URL; ``detail`` (addresses a name resolved to) is for
    operators' logs only: shown to a user, it would map the worker's internal network for them."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


class DoesNotResolve(TargetRefused):
    """The name has no address now: at delivery a transient failure (DNS may be back), at registration a
    refusal. Its text is the same as a refusal's, so that it is no oracle for which internal names exist."""


class UnknownChannel(SinksError, ValueError):
    """A channel name that is not one of schemas.deliveries.CHANNELS (a typo in an operator's command)."""
