"""An aiokafka client that lost every broker (crownstream/engine/kafka_rebootstrap.py), against the real broker: it
bootstraps again and finds the cluster, where aiokafka alone would ask nobody for metadata forever."""

from __future__ import annotations

from aiokafka.client import AIOKafkaClient

from crownstream.engine.kafka_rebootstrap import install, knows_no_broker


async def lose_every_broker(client: AIOKafkaClient) -> None:
    # The state a client bootstrapped mid-restart ends in: a metadata without brokers, the bootstrap
    # connection gone.
    client.cluster._brokers = {}
    for conn in list(client._conns.values()):
        conn.close()
    client._conns.clear()


async def test_a_client_that_lost_every_broker_bootstraps_again(settings):
    install()
    client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap)
    await client.bootstrap()
    try:
        await lose_every_broker(client)
        assert knows_no_broker(client)
        assert await client.force_metadata_update() is True
        assert client.cluster.brokers(), "still no broker after a metadata update"
        assert not knows_no_broker(client)
    finally:
        await client.close()
