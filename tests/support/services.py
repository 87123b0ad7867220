"""The real services tests run against: the Kafka broker and PostgreSQL that deploy/ starts, and the three-broker
cluster of deploy/kafka-cluster.sh for the tests of replicated topics."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KAFKA_PORT = int(os.environ.get("CROWNSTREAM_KAFKA_PORT", "19092"))
PG_PORT = int(os.environ.get("CROWNSTREAM_PG_PORT", "15432"))
KAFKA_BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
PG_USER = os.environ.get("CROWNSTREAM_PG_USER", "crownstream")


def deploy(script: str, action: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "deploy" / script), action], check=True, capture_output=True, text=True)


def ensure_kafka() -> str:
    """Start the broker unless it runs already (idempotent), return its bootstrap address."""
    deploy("kafka.sh", "start")
    return KAFKA_BOOTSTRAP


def ensure_postgres() -> str:
    deploy("postgres.sh", "start")
    return f"postgresql://{PG_USER}@127.0.0.1:{PG_PORT}"


def kafka_cluster(action: str, *args: str, timeout: float = 180) -> str:
    """``deploy/kafka-cluster.sh ACTION [ARGS]`` (start, stop, status, kill-node N, start-node N …); its output."""
    done = subprocess.run(
        [str(REPO / "deploy" / "kafka-cluster.sh"), action, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout


def kafka_cluster_running() -> bool:
    try:
        kafka_cluster("status", timeout=60)
    except subprocess.CalledProcessError:
        return False
    return True


def kafka_cluster_bootstrap() -> str:
    return kafka_cluster("bootstrap").strip()
