"""Exactly-once done right for outputs: every record an agent sends while processing an input event goes
into the transaction of that event's *input* partition.

faust-streaming's ``TransactionManager.send`` picks the transactional producer from the *destination*
topic and partition of the record being sent. That is only correct when the output topic happens to be
co-partitioned with, and grouped like, the input. Otherwise an output lands in another partition's
transaction — committed or aborted independently of the input offset that produced it — or in no
transaction at all when the consumer has no metadata for the output topic. Those are the duplicates and
"sends outside the transaction" reported in faust-streaming issues #323, #517 and #177.

Kafka Streams' rule is one transaction per input partition (task), and so is ours: the transactional id
is derived from the TP of ``faust.current_event()``; the destination partition is still chosen by the key.
Sends made outside event processing (none in our agents) keep Faust's behaviour.
"""

from __future__ import annotations

from typing import Any

from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import Transport


class InputPartitionTransactionManager(TransactionManager):
    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   timestamp: float | None, headers: Any, *, transactional_id: str | None = None):
        event = current_event()
        if transactional_id is None and event is not None:
            source = event.message.tp
            group = self.app.assignor.group_for_topic(source.topic)
            transactional_id = f"{self.app.conf.id}-{group}-{source.partition}"
            # None lets the producer's partitioner choose by key, with its own metadata.
            dest = self.consumer.key_partition(topic, key, partition)
            return await self.producer.send(topic, key, value, dest, timestamp, headers,
                                            transactional_id=transactional_id)
        return await super().send(topic, key, value, partition, timestamp, headers,
                                  transactional_id=transactional_id)


class CrownstreamTransport(Transport):
    TransactionManager = InputPartitionTransactionManager
