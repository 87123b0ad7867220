"""Errors of the Kafka edge, under ``StreamsError``, worded so that an operator knows what to do next."""

from __future__ import annotations

from crownstream.errors import CrownstreamError


class StreamsError(CrownstreamError):
    """Root of the errors of crownstream.streams (the Kafka edges)."""


class BrokerUnavailable(StreamsError, ConnectionError):
    def __init__(self, bootstrap: str, cause: BaseException | None = None) -> None:
        super().__init__(
            f"cannot reach the Kafka broker at {bootstrap} ({cause or 'no answer'}). "
            "Is it running? Locally: deploy/kafka.sh start. Elsewhere: check CROWNSTREAM_KAFKA_BOOTSTRAP."
        )
        self.bootstrap = bootstrap
