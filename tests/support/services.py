"""The real services tests run against: the Kafka broker and PostgreSQL that deploy/ starts."""

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
