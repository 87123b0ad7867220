"""The transport through which faust creates the engine's transaction manager, producer and consumer
(UPSTREAM.md W). ``topic_declarations.DeclareOnceTransport`` (F17) extends it; ``install`` sets it on the app.
"""

from __future__ import annotations

from faust.transport.drivers.aiokafka import Transport

from crownstream.engine.consumer import _Consumer
from crownstream.engine.producer import _StateTrackingProducer
from crownstream.engine.transactions import InputPartitionTransactionManager


class CrownstreamTransport(Transport):
    TransactionManager = InputPartitionTransactionManager
    Producer = _StateTrackingProducer
    Consumer = _Consumer
