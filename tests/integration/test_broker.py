"""The broker deploy/ starts is Apache Kafka in KRaft mode, with working transactions."""

from __future__ import annotations

import subprocess
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.services import REPO


def test_broker_process_is_apache_kafka_in_kraft_mode(kafka_bootstrap):
    pid = (REPO / ".state" / "kafka" / "kafka.pid").read_text().strip()
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert b"kafka.Kafka" in cmdline, cmdline
    config = next(arg for arg in cmdline if arg.endswith(b"server.properties")).decode()
    props = dict(
        line.split("=", 1) for line in open(config).read().splitlines() if "=" in line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"  # KRaft: no ZooKeeper anywhere
    status = subprocess.run([str(REPO / "deploy" / "kafka.sh"), "status"], capture_output=True, text=True)
    assert status.returncode == 0 and "Apache Kafka 3.9.1 (KRaft)" in status.stdout


async def test_read_committed_consumer_sees_only_committed_transactions(kafka_bootstrap):
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"txn-test-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1")
            await producer.send(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted-1")
        await producer.send(topic, b"aborted-2")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-3")
    finally:
        await producer.stop()

    async def read_all(isolation: str) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            isolation_level=isolation,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            values: list[bytes] = []
            for _ in range(10):
                batch = await consumer.getmany(timeout_ms=500)
                values += [r.value for records in batch.values() for r in records]
            return values
        finally:
            await consumer.stop()

    assert await read_all("read_committed") == [b"committed-1", b"committed-2", b"committed-3"]
    # The aborted records are really in the log: only the isolation level hides them.
    assert set(await read_all("read_uncommitted")) >= {b"aborted-1", b"aborted-2"}
