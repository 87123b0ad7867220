"""Every knob Crownstream has, read from environment variables (prefix ``CROWNSTREAM_``).

One module so that operators find every setting in one place and docker-compose.yml, deploy/ and the
workers agree on one name per knob (tests/unit/test_compose.py checks docker-compose.yml against this).
Defaults suit a laptop running ``deploy/`` on loopback; production overrides them through the environment.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crownstream.errors import InsecureSecrets as InsecureSecrets

#: The secrets a worker needs, and the shortest value accepted for each outside development mode.
SECRETS = ("staff_token", "user_token_key", "unsubscribe_secret")
MIN_SECRET_LENGTH = 32
#: Values that were ever written in this project's files or are placeholders people copy: never a production secret.
KNOWN_SECRETS = frozenset(
    {
        "change-me",
        "change-me-too",
        "changeme",
        "secret",
        "password",
        "token",
        "test-token",
        "link-secret",
        "crownstream",
        "crownstream-dev-unsubscribe-secret",
    }
)
#: What development mode signs with when a key is unset. Public on purpose: anyone can forge with them, which is
#: why a worker outside development mode refuses to start while one is in use.
DEV_USER_TOKEN_KEY = "crownstream-development-user-token-key-not-a-secret"
DEV_UNSUBSCRIBE_SECRET = "crownstream-development-unsubscribe-key-not-a-secret"
KNOWN_SECRETS |= {DEV_USER_TOKEN_KEY, DEV_UNSUBSCRIBE_SECRET}


# Delays before each retry, per channel. Webhooks and Discord as Svix retries (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# 10 h after the first attempt: 27.6 h), so a receiver's outage of a day loses nothing; email about two days, as mail
# relays keep retrying; in-app (a database write of our own) an hour.
DEFAULT_RETRY_SCHEDULES_S: dict[str, tuple[float, ...]] = {
    "webhook": (5, 300, 1800, 7200, 18000, 36000, 36000),
    "discord": (5, 300, 1800, 7200, 18000, 36000, 36000),
    "email": (60, 300, 1800, 7200, 18000, 36000, 36000, 86400),
    "in_app": (1, 5, 30, 120, 600, 1800, 3600),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROWNSTREAM_", extra="ignore", frozen=True)

    # --- Kafka -----------------------------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated host:port.")
    app_id: str = Field(
        "crownstream", description="Faust app id: the consumer group and the prefix of internal topics."
    )
    topic_prefix: str = Field(
        "", description="Prefix for every Crownstream topic, so several deployments can share a cluster."
    )
    topic_partitions: int = Field(8, ge=1, description="Partitions of the keyed input/output topics.")
    topic_replication: int = Field(
        1,
        ge=1,
        description="Replication factor of created topics (3 in production). A worker refuses to start while a "
        "topic it uses exists with a lower factor.",
    )
    topic_min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="min.insync.replicas of created topics: how many replicas have a write before it is "
        "acknowledged (acks=all, as every transactional write is). Unset: 2 when the replication factor is 3 or "
        "more (a broker may die and writes go on, none acknowledged by one replica only), else 1 (with a factor "
        "of 2, a 2 would stop every write while either broker is down; set it for durability over availability).",
    )
    processing_guarantee: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once", description="Faust processing guarantee; exactly_once uses Kafka transactions."
    )
    # Below the broker's default message.max.bytes (1 MiB), so an oversize event can still be kept in the DLQ.
    max_event_bytes: int = Field(512_000, ge=1024, description="Largest accepted event; larger ones go to the DLQ.")
    producer_linger_ms: int = Field(5, ge=0, description="How long the producer waits to fill a batch.")
    consumer_fetch_max_wait_ms: int = Field(
        200,
        ge=10,
        le=1500,
        description="How long the broker holds a worker's fetch when there is no new data. A broker answers one "
        "request of a connection at a time, so each offset look-up of a rebalance waits behind the idle fetch on "
        "the consumer's connection: at Faust's 1500 that was ~1.5 s per step, three steps per rebalance. 200 costs "
        "a few more fetch requests per second to an idle broker.",
    )
    batch_max_events: int = Field(
        500,
        ge=1,
        description="Most events of one input partition an agent processes as one micro-batch (one commit-gate "
        "hold, table writes written once per key at its end; crownstream/engine/batches.py). A batch never waits "
        "to fill: it is what the consumer already delivered.",
    )
    commit_interval_s: float = Field(
        0.1,
        gt=0,
        description="How often a worker commits its offsets (Faust's broker_commit_interval); under exactly_once "
        "also its transactions, so outputs become visible downstream only this often, at every hop (bench/latency.py). "
        "Kafka Streams' default under exactly-once; Faust's 2.8 s made a notification ~10 s late through four hops.",
    )

    # --- Workers ---------------------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Interface the worker's HTTP server binds to.")
    web_port: int = Field(
        6066, ge=1, le=65535, description="Port of the worker's HTTP server (queries, metrics, health)."
    )
    canonical_url: str | None = Field(
        None, description="URL other workers use to reach this one (query routing); default http://web_host:web_port."
    )
    data_dir: str = Field(
        ".state/workers", description="Where workers keep RocksDB table state (one subfolder per worker)."
    )
    session_timeout_s: float = Field(
        10.0, gt=0, description="How long the group waits for a silent worker before moving its partitions."
    )
    heartbeat_interval_s: float = Field(
        0.25,
        gt=0,
        description="How often a worker tells the group it is alive (at most a third of the session timeout). It "
        "also learns of a rebalance only from a heartbeat's answer, and a rebalance waits for every member to rejoin: "
        "Faust's 3 s added up to that much to every rebalance's pause; 1 s still left the longest pause at 2.6-2.9 s, "
        "0.25 s at 1.0 s (bench rebalance), for four small requests a second per worker.",
    )
    table_standby_replicas: int = Field(
        1, ge=0, description="Standby replicas of each table partition, for fast failover."
    )
    table_restore: Literal["consumer", "faust"] = Field(
        "consumer",
        description="How active table partitions are restored: a restore consumer of their own "
        "(crownstream/engine/recovery.py), or 'faust', Faust's own recovery — slower and known to lose changelog "
        "records under back-to-back rebalances; kept to compare against (bench/restart.py).",
    )
    ranking_changes_top: int = Field(
        10,
        ge=0,
        description="ranking.changed is emitted for every team whose own standing changed, and for teams "
        "only pushed up or down by others when within this many top ranks (or a stage's prize places, if more).",
    )
    log_level: str = Field("info", description="Worker log level.")
    log_json: bool = Field(True, description="Structured JSON logs (one object per line).")

    # --- PostgreSQL ------------------------------------------------------------------------------------
    database_url: str = Field(
        "postgresql+asyncpg://crownstream@127.0.0.1:15432/crownstream",
        description="SQLAlchemy URL of the delivery ledger and in-app feed database.",
    )

    database_migrate_on_start: bool = Field(
        True, description="Workers apply pending ledger/feed migrations at start (under an advisory lock)."
    )
    database_pool_size: int = Field(10, ge=1, description="PostgreSQL connections per worker process.")

    # --- Sinks (delivery) ------------------------------------------------------------------------------
    sink_max_in_flight: int = Field(256, ge=1, description="Deliveries a worker sends concurrently per channel.")
    sink_claim_batch: int = Field(128, ge=1, description="Ledger rows a dispatcher claims per statement.")
    sink_max_in_flight_per_target: int = Field(
        64, ge=1, description="Of those, at most this many to one destination (a slow endpoint cannot take them all)."
    )
    sink_poll_interval_s: float = Field(
        1.0, gt=0, description="How often a dispatcher looks for due retries and expired leases of other workers."
    )
    sink_lease_s: float = Field(
        60.0, gt=0, description="A claimed delivery not recorded within this time is re-sent (the sender died)."
    )
    sink_retry_schedule_s: dict[str, tuple[float, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_RETRY_SCHEDULES_S),
        description='Per channel, the delay before each retry (JSON, e.g. {"webhook": [5, 300, 1800]}); a channel '
        "left out keeps its default. After the last one fails the delivery goes to the delivery DLQ.",
    )
    sink_retry_jitter: float = Field(
        0.2, ge=0, le=0.5, description="Each retry delay varies by up to this fraction either way (spreads an outage)."
    )
    sink_max_attempts: int | None = Field(
        None,
        ge=1,
        description="Set: every channel retries with exponential backoff (SINK_BACKOFF_BASE_S doubling up to "
        "SINK_BACKOFF_MAX_S) for this many attempts instead of its schedule — short horizons for tests and demos.",
    )
    sink_backoff_base_s: float = Field(1.0, gt=0, description="With SINK_MAX_ATTEMPTS: the first retry delay.")
    sink_backoff_max_s: float = Field(3600.0, gt=0, description="With SINK_MAX_ATTEMPTS: the longest retry delay.")
    sink_circuit_failures: int = Field(
        5, ge=1, description="Consecutive failed attempts to one destination that open its circuit (probe only)."
    )
    sink_circuit_open_s: float = Field(
        30.0, gt=0, description="How long an open circuit sends nothing before one probe; doubles while probes fail."
    )
    sink_circuit_open_max_s: float = Field(600.0, gt=0, description="Longest an open circuit waits between probes.")
    sink_allow_private_targets: bool = Field(
        False, description="Allow webhook/Discord URLs on private, loopback and link-local addresses (tests, demo)."
    )
    ledger_retention_days: int = Field(30, ge=1, description="`ledger prune` default: delivered rows older than this.")
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="Deadline of one outbound webhook request, connect to last byte."
    )
    webhook_secret_grace_s: float = Field(
        86_400.0, ge=0, description="After a secret rotation, how long the previous secrets still sign beside the new."
    )
    webhook_rate_limit_max_per_second: float = Field(
        1000.0,
        gt=0,
        description="The highest rate limit an endpoint's owner may set, in messages a second (the lowest is 0.01).",
    )
    webhook_disable_after_s: float = Field(
        5 * 24 * 3600.0, gt=0, description="An endpoint failing without a success for this long is disabled."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server of the email sink.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (587 with STARTTLS, 465 with implicit TLS).")
    smtp_username: str | None = Field(None, description="SMTP AUTH user; unset = no authentication.")
    smtp_password: str | None = Field(None, description="SMTP AUTH password.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS (required if offered).")
    smtp_use_tls: bool = Field(False, description="Implicit TLS (port 465).")
    smtp_timeout_s: float = Field(30.0, gt=0, description="SMTP connect/command timeout.")
    smtp_connections: int = Field(4, ge=1, description="SMTP connections kept open and reused per worker.")
    email_from: str = Field("Crownstream <notifications@crownstream.invalid>", description="From: of every email.")
    email_message_id_domain: str = Field("crownstream.invalid", description="Right-hand side of Message-IDs.")
    public_url: str = Field("http://127.0.0.1:6066", description="Base URL of links in emails (unsubscribe, feed).")
    discord_timeout_s: float = Field(
        10.0, gt=0, description="Deadline of one Discord execute-webhook request, connect to last byte."
    )
    discord_max_429_waits: int = Field(
        5, ge=0, description="429 answers waited out in place before the delivery is rescheduled as a retry."
    )
    feed_retention_days: int = Field(
        90, ge=1, description="`feed prune` default: items read or archived longer ago than this."
    )
    feed_stream_ping_s: float = Field(
        15.0, gt=0, description="Keep-alive comment interval of live feed streams (proxies drop idle ones)."
    )
    feed_stream_retry_ms: int = Field(2000, ge=100, description="How long a feed client waits to reconnect a stream.")
    feed_stream_max_per_user: int = Field(
        8, ge=1, description="Live feed streams one user may hold open on one worker (tabs, devices); more get 429."
    )
    feed_stream_max_per_worker: int = Field(
        5000, ge=1, description="Live feed streams one worker serves at most; more get 429 (with Retry-After)."
    )
    feed_listener_health_s: float = Field(
        10.0, gt=0, description="How often a worker checks its PostgreSQL connection listening for feed changes."
    )

    # --- Notifications ---------------------------------------------------------------------------------
    notifications_link_base: str = Field(
        "", description="Prefix of the links in notifications (e.g. https://play.example.com); empty = paths only."
    )
    notifications_tick_s: float = Field(
        1.0,
        gt=0,
        description="How often a worker looks for due digests, quiet-hour releases and scheduled notifications.",
    )
    notifications_broadcast_chunk: int = Field(
        500, ge=1, description="Users fanned out per step of an all-users broadcast; other events run between steps."
    )
    clock_start: datetime | None = Field(
        None, description="Test hook: the notification clock starts at this instant instead of now (ISO 8601)."
    )
    clock_speed: float = Field(
        1.0, gt=0, description="Test hook: how many times faster than real time that clock runs."
    )
    fault_abort_after_sends: int = Field(
        0,
        ge=0,
        description="Test hook: after this many transactional sends, the worker aborts its open transactions "
        "once instead of committing them (what a fenced producer sees); 0 = never.",
    )

    # --- Security --------------------------------------------------------------------------------------
    dev_mode: bool = Field(
        False,
        description="Development mode (the demo, the tests): workers accept unset or well-known secrets. "
        "Never in production: without it a worker refuses to start while a secret below is unset or a known value.",
    )
    staff_token: str | None = Field(
        None,
        description="Bearer token of staff actions (overrides, endpoint administration, DLQ replay, ops views). "
        "At least 32 characters; required unless dev_mode.",
    )
    user_token_key: str | None = Field(
        None,
        description="Key of the HMAC that signs per-user bearer tokens (minted by the platform backend with "
        "`crownstream token mint` or crownstream.web.auth.mint_user_token). At least 32 characters; required unless "
        "dev_mode. The same on every worker.",
    )
    user_token_max_ttl_s: int = Field(
        86_400,
        ge=60,
        description="Longest lifetime a user token may have; a token valid for longer is refused.",
    )
    unsubscribe_secret: str | None = Field(
        None,
        description="Key of the HMAC that signs one-click unsubscribe links (anyone who knows it can "
        "unsubscribe anyone). At least 32 characters; required unless dev_mode. The same on every worker.",
    )

    # --- Limits on what outside parties control --------------------------------------------------------
    http_max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body a worker reads.")
    http_max_json_depth: int = Field(32, ge=2, description="Deepest nesting of a JSON request body.")
    http_max_ids: int = Field(1000, ge=1, description="Most ids one request may name (feed read marks).")
    sink_retry_after_max_s: float = Field(
        300.0,
        gt=0,
        description="Longest Retry-After / X-RateLimit-Reset-After a sink waits; a longer one is capped "
        "and the attempt counted as failed.",
    )
    sink_response_body_max_bytes: int = Field(
        16_384,
        ge=256,
        description="Most bytes a sink reads of a receiver's non-2xx answer (for the error text).",
    )
    sink_max_url_length: int = Field(2048, ge=64, description="Longest webhook or Discord URL accepted.")

    # --- Live leaderboard page and operations ----------------------------------------------------------
    leaderboard_rows: int = Field(100, ge=1, le=1000, description="Rows the live leaderboard page shows and streams.")
    leaderboard_ping_s: float = Field(
        15.0, gt=0, description="Keep-alive comment interval of leaderboard event streams (proxies drop idle ones)."
    )
    leaderboard_retry_ms: int = Field(2000, ge=100, description="How long a browser waits to reconnect a live stream.")
    metrics_refresh_s: float = Field(
        10.0, gt=0, description="How often a worker refreshes its consumer-lag and table-size gauges."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318): spans of every hop are exported "
        "there; unset, nothing is exported (trace headers are carried on the records either way).",
    )
    otel_service_name: str = Field("crownstream", min_length=1, description="service.name of exported spans.")
    backlog_refresh_s: float = Field(
        15.0, gt=0, description="How often a worker reads the delivery backlog and disabled endpoints for /metrics."
    )

    @field_validator("sink_retry_schedule_s")
    @classmethod
    def _known_channels_positive_delays(cls, value: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        unknown = sorted(set(value) - set(DEFAULT_RETRY_SCHEDULES_S))
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; the channels are {sorted(DEFAULT_RETRY_SCHEDULES_S)}")
        for channel, delays in value.items():
            if any(not 0 < d <= 7 * 86400 for d in delays):
                raise ValueError(f"{channel}: each retry delay is more than 0 and at most 7 days (604800 s)")
        return {**DEFAULT_RETRY_SCHEDULES_S, **value}  # a channel left out keeps its default

    @model_validator(mode="after")
    def _min_insync_within_replication(self) -> Settings:
        if self.topic_min_insync_replicas is not None and self.topic_min_insync_replicas > self.topic_replication:
            raise ValueError(
                f"CROWNSTREAM_TOPIC_MIN_INSYNC_REPLICAS={self.topic_min_insync_replicas} is more than "
                f"CROWNSTREAM_TOPIC_REPLICATION={self.topic_replication}: every write would be refused"
            )
        return self

    @property
    def min_insync_replicas(self) -> int:
        """The min.insync.replicas set on every topic the pipeline creates (CROWNSTREAM_TOPIC_MIN_INSYNC_REPLICAS,
        or what goes with the replication factor: 2 from 3 replicas up, else 1)."""
        if self.topic_min_insync_replicas is not None:
            return self.topic_min_insync_replicas
        return 2 if self.topic_replication >= 3 else 1

    def topic_configs(self) -> dict[str, str]:
        """Topic-level configs every created topic gets, whoever creates it (``crownstream topics create`` or a
        worker's Faust declarations: inputs, outputs, changelogs, repartition and internal topics)."""
        return {"min.insync.replicas": str(self.min_insync_replicas)}

    @property
    def worker_url(self) -> str:
        return self.canonical_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def unsubscribe_key(self) -> str:
        """The key that signs unsubscribe links: the configured secret, or in development mode a public one."""
        return _secret_or_dev(self, "unsubscribe_secret", DEV_UNSUBSCRIBE_SECRET)

    @property
    def user_token_signing_key(self) -> str | None:
        """The key of per-user tokens; None (every user token refused) when unset outside development mode."""
        if self.user_token_key:
            return self.user_token_key
        return DEV_USER_TOKEN_KEY if self.dev_mode else None

    def secret_problems(self) -> list[str]:
        """What is wrong with the secrets for a production worker, one line each (empty: nothing)."""
        problems = []
        for name in SECRETS:
            value = getattr(self, name)
            variable = f"CROWNSTREAM_{name.upper()}"
            if not value:
                problems.append(f"{variable} is not set")
            elif value.strip().lower() in KNOWN_SECRETS:
                problems.append(f"{variable} is a well-known value; anyone could use it")
            elif len(value) < MIN_SECRET_LENGTH:
                problems.append(f"{variable} has {len(value)} characters; use at least {MIN_SECRET_LENGTH}")
        given = [getattr(self, name) for name in SECRETS if getattr(self, name)]
        if len(set(given)) < len(given):
            problems.append("two of the secrets have the same value; give each its own random value")
        return problems

    def check_secrets(self) -> None:
        """Raise ``InsecureSecrets`` unless every secret is fit for production or development mode is on."""
        if self.dev_mode:
            return
        problems = self.secret_problems()
        if problems:
            raise InsecureSecrets(
                "refusing to start a worker with unsafe secrets:\n  - "
                + "\n  - ".join(problems)
                + "\nSet each to its own long random value (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`), the same on every worker; or, on a development machine "
                "only, set CROWNSTREAM_DEV_MODE=true."
            )


def _secret_or_dev(settings: Settings, name: str, dev_value: str) -> str:
    value = getattr(settings, name)
    if value:
        return value
    if settings.dev_mode:
        return dev_value
    raise InsecureSecrets(f"CROWNSTREAM_{name.upper()} is not set (a worker outside development mode needs it)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
