"""A transactional producer's coordinator lookup rides out a dropped connection (crownstream/engine/
coordinator_lookup.py, UPSTREAM.md F22). The client is a stand-in answering FindCoordinator as a restarting
broker does: the connection closes under the first request; aiokafka's own Sender gives up on that."""

from __future__ import annotations

import pytest
from aiokafka.client import CoordinationType
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.producer.sender import Sender
from aiokafka.producer.transaction_manager import TransactionManager

from crownstream.engine.coordinator_lookup import _DisconnectTolerantSender


class RestartingBroker:
    """``coordinator_lookup`` fails ``drops`` times with a closed connection, then names node 1."""

    def __init__(self, drops: int) -> None:
        self.drops, self.lookups, self.metadata_updates = drops, 0, 0

    async def coordinator_lookup(self, coordinator_type, coordinator_key):
        self.lookups += 1
        if self.lookups <= self.drops:
            raise KafkaConnectionError("Connection at 127.0.0.1:9092 closed")
        return 1

    async def ready(self, node_id, group=None):
        return True

    async def force_metadata_update(self):
        self.metadata_updates += 1
        return True


def sender(cls: type, client: RestartingBroker) -> Sender:
    made = object.__new__(cls)
    made.client = client
    made._txn_manager = TransactionManager("cs-app-0-3", 60000)
    made._coordinators = {}
    made._retry_backoff = 0.001
    return made


async def test_a_connection_closed_under_the_lookup_is_looked_up_again():
    broker = RestartingBroker(drops=3)
    found = await sender(_DisconnectTolerantSender, broker)._find_coordinator(
        CoordinationType.TRANSACTION, "cs-app-0-3"
    )
    assert found == 1 and broker.lookups == 4 and broker.metadata_updates == 3


async def test_aiokafkas_own_sender_gives_up_on_it():
    """The upstream flaw (F22: removable when this fails)."""
    with pytest.raises(KafkaError):
        await sender(Sender, RestartingBroker(drops=1))._find_coordinator(CoordinationType.TRANSACTION, "cs-app-0-3")
