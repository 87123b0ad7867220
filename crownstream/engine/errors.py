"""The engine's errors, under one root: ``EngineError`` (itself under ``crownstream.errors.CrownstreamError``).

Each also derives from the exception the engine raised before it had its own, so code that caught that one
(``agents/decoding.py`` treats ``ProducerSendError`` as transient) still catches it.
"""

from __future__ import annotations

from aiokafka.errors import IllegalOperation, KafkaError
from faust.exceptions import ProducerSendError

from crownstream.errors import CrownstreamError


class EngineError(CrownstreamError):
    """Root of every error the engine (crownstream/engine/) raises itself."""


class NotInstalled(EngineError, LookupError):
    """``state_of(app)`` for an app that ``install`` has not been called on."""


class AlreadyInstalled(EngineError, RuntimeError):
    """``install`` called twice on one app: the engine is wired once, at app creation."""


class NoEventBeingProcessed(EngineError, RuntimeError):
    """``send_batch`` outside the processing of an event: there is no input partition to send in the
    transaction of."""


class NoTransactionalProducer(EngineError, ProducerSendError):
    """The event's input partition has no transactional producer here (it is not active on this worker)."""


class BrokerTooOldForStableOffsets(EngineError):
    """The broker cannot tell settled committed offsets from pending ones (OffsetFetch below v7, KIP-447)."""


class UnstableOffsetCommitError(EngineError, KafkaError):
    """A partition's committed offset is pending in an open transaction (Kafka's UNSTABLE_OFFSET_COMMIT, 88):
    retriable, so aiokafka's committed-offset fetches retry it once the transaction settles."""

    errno = 88
    message = "UNSTABLE_OFFSET_COMMIT"
    description = "There are unstable offsets that need to be cleared."
    retriable = True


#: What Kafka raises when it fails under the pipeline (not the record's fault): a producer's send or transaction
#: refused, the producer fenced. aiokafka's IllegalOperation ("Can't send messages while not in transaction", what a
#: fenced producer's sends raise) is not a KafkaError, and was taken for a handler's bug.
KAFKA_FAILURES: tuple[type[Exception], ...] = (KafkaError, ProducerSendError, IllegalOperation)
