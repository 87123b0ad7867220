"""Exit 0 when the broker at argv[1] answers a metadata request (used by deploy/kafka.sh)."""

import asyncio
import sys

from aiokafka import AIOKafkaClient


async def ping(bootstrap: str) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=5)  # bootstrap() is a metadata request
        if not client.cluster.brokers():
            raise SystemExit("broker answered with no brokers in its metadata")
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(ping(sys.argv[1]))
