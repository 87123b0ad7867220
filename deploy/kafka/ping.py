"""Exit 0 when the broker at argv[1] answers a metadata request (used by deploy/kafka.sh and kafka-cluster.sh).

ping.py 127.0.0.1:19092                          any broker in the metadata it serves
ping.py 127.0.0.1:19192 --broker-ids 1,2,3       these brokers registered and unfenced (listed in it)
ping.py 127.0.0.1:19192 --in-sync                every partition of every topic (internal ones too) has all
                                                 its replicas in sync: nothing left to catch up after a restart
"""

import argparse
import asyncio

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient


async def ping(bootstrap: str, broker_ids: set[int]) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=5)  # bootstrap() is a metadata request
        listed = {b.nodeId for b in client.cluster.brokers()}
        if not listed:
            raise SystemExit("broker answered with no brokers in its metadata")
        if broker_ids - listed:
            raise SystemExit(f"brokers {sorted(broker_ids - listed)} not in the metadata (listed: {sorted(listed)})")
    finally:
        await client.close()


async def out_of_sync(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), timeout=5)
    try:
        lagging = []
        for topic in await admin.describe_topics():
            for p in topic["partitions"]:
                if set(p["isr"]) != set(p["replicas"]) or p["leader"] < 0:
                    lagging.append(f"{topic['topic']}[{p['partition']}] isr={p['isr']} replicas={p['replicas']}")
        return lagging
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--broker-ids", default="", help="comma-separated node ids that must be listed")
    parser.add_argument("--in-sync", action="store_true", help="every partition's replicas all in sync")
    args = parser.parse_args()
    asyncio.run(ping(args.bootstrap, {int(i) for i in args.broker_ids.split(",") if i}))
    if args.in_sync:
        lagging = asyncio.run(out_of_sync(args.bootstrap))
        if lagging:
            raise SystemExit(f"{len(lagging)} partitions not fully in sync, e.g. {lagging[:3]}")


if __name__ == "__main__":
    main()
