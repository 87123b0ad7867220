"""The errors of the event and delivery contracts (crownstream.schemas), under ``SchemasError``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crownstream.errors import CrownstreamError

if TYPE_CHECKING:  # codec imports this module: the name is for the annotation only
    from crownstream.schemas.codec import Rejection


class SchemasError(CrownstreamError):
    """Root of the errors of crownstream.schemas: a record that breaks one of its contracts."""


class InvalidEvent(SchemasError, ValueError):
    """Raised by ``validate`` and the producer: the event would be rejected by the pipeline."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


class InvalidDelivery(SchemasError, ValueError):
    """A delivery request that cannot be read (``decode_delivery``); the message says what was wrong."""
