"""Every knob Crownstream has, read from environment variables (prefix ``CROWNSTREAM_``).

One module so that operators find every setting in one place and docker-compose.yml, deploy/ and the
workers agree on one name per knob (tests/unit/test_compose.py checks docker-compose.yml against this).
Defaults suit a laptop running ``deploy/`` on loopback; production overrides them through the environment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROWNSTREAM_", extra="ignore", frozen=True)

    # --- Kafka -----------------------------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated host:port.")
    app_id: str = Field("crownstream", description="Faust app id: the consumer group and the prefix of internal topics.")
    topic_prefix: str = Field("", description="Prefix for every Crownstream topic, so several deployments can share a cluster.")
    topic_partitions: int = Field(8, ge=1, description="Partitions of the keyed input/output topics.")
    topic_replication: int = Field(1, ge=1, description="Replication factor of created topics (3 in production).")
    processing_guarantee: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once", description="Faust processing guarantee; exactly_once uses Kafka transactions."
    )
    # Below the broker's default message.max.bytes (1 MiB), so an oversize event can still be kept in the DLQ.
    max_event_bytes: int = Field(512_000, ge=1024, description="Largest accepted event; larger ones go to the DLQ.")
    producer_linger_ms: int = Field(5, ge=0, description="How long the producer waits to fill a batch.")

    # --- Workers ---------------------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Interface the worker's HTTP server binds to.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's HTTP server (queries, metrics, health).")
    canonical_url: str | None = Field(
        None, description="URL other workers use to reach this one (query routing); default http://web_host:web_port."
    )
    data_dir: str = Field(".state/workers", description="Where workers keep RocksDB table state (one subfolder per worker).")
    session_timeout_s: float = Field(
        10.0, gt=0, description="How long the group waits for a silent worker before moving its partitions."
    )
    table_standby_replicas: int = Field(1, ge=0, description="Standby replicas of each table partition, for fast failover.")
    log_level: str = Field("info", description="Worker log level.")
    log_json: bool = Field(True, description="Structured JSON logs (one object per line).")

    # --- PostgreSQL ------------------------------------------------------------------------------------
    database_url: str = Field(
        "postgresql+asyncpg://crownstream@127.0.0.1:15432/crownstream",
        description="SQLAlchemy URL of the delivery ledger and in-app feed database.",
    )

    # --- Security --------------------------------------------------------------------------------------
    staff_token: str | None = Field(None, description="Bearer token for staff endpoints; unset = staff endpoints refuse.")

    # --- Live leaderboard page and operations ----------------------------------------------------------
    leaderboard_rows: int = Field(100, ge=1, le=1000, description="Rows the live leaderboard page shows and streams.")
    leaderboard_ping_s: float = Field(
        15.0, gt=0, description="Keep-alive comment interval of leaderboard event streams (proxies drop idle ones)."
    )
    leaderboard_retry_ms: int = Field(2000, ge=100, description="How long a browser waits to reconnect a live stream.")
    metrics_refresh_s: float = Field(
        10.0, gt=0, description="How often a worker refreshes its consumer-lag and table-size gauges."
    )

    @property
    def worker_url(self) -> str:
        return self.canonical_url or f"http://{self.web_host}:{self.web_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
