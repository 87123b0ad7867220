"""The sinks' PostgreSQL tables (SQLAlchemy Core). The schema itself is created by the migrations in
``migrations/versions``; these definitions are what the code queries, and a test checks they agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

STATES = ("pending", "sending", "sent", "failed", "dead")

# The delivery ledger. One row per (dedup_key, target): target is "" except for webhooks, where one request
# fans out to each of the subscriber's matching endpoints (target = endpoint id) and each is its own delivery.
# The row is also the outbox: `request` holds the request, so retries need nothing from Kafka.
deliveries = Table(
    "deliveries",
    metadata,
    Column("dedup_key", String(64), nullable=False),
    Column("target", String(64), nullable=False, server_default=""),
    Column("channel", String(16), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("notification_type", String(64), nullable=False),
    Column("state", String(8), nullable=False, server_default="pending"),
    Column("request", JSONB, nullable=False),
    Column("payload_digest", String(64)),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    # [{"at": iso, "status": "sent|failed|dead|...", "code": 503, "error": "…", "worker": "…"}]
    Column("attempts", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("lease_until", DateTime(timezone=True)),
    Column("claimed_by", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("dedup_key", "target", name="deliveries_pkey"),
    CheckConstraint(f"state IN {STATES!r}", name="deliveries_state_check"),
    # The dispatcher's claim scans only work that can be due: never the (large) delivered history.
    Index(
        "deliveries_due",
        "channel",
        "next_attempt_at",
        postgresql_where=text("state IN ('pending', 'failed', 'sending')"),
    ),
    Index("deliveries_prune", "sent_at", postgresql_where=text("state = 'sent'")),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("url", Text, nullable=False),
    # Every secret signs each message (one signature per secret) so receivers can rotate without a gap:
    # add the new secret, switch the receiver, drop the old one.
    Column("secrets", ARRAY(Text), nullable=False),
    # After a rotation the previous secrets (all but the first) sign until then, so receivers can switch without a
    # gap; afterwards only the newest signs. NULL: every secret signs (none was rotated out).
    Column("previous_secrets_until", DateTime(timezone=True)),
    # Notification types this endpoint receives; empty = all.
    Column("event_types", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    # Paused by its owner: deliveries wait in the ledger (not dead, as for a disabled endpoint) until resumed.
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    # Set by its owner: at most this many deliveries a second (NULL: no limit); the rest wait, they do not fail.
    Column("rate_limit_per_second", Float),
    # The newest secret's scheme: 'v1' HMAC-SHA256 (whsec_) or 'v1a' Ed25519 (whsk_, its owner holds the whpk_).
    Column("signature_scheme", String(8), nullable=False, server_default=text("'v1'")),
    Column("failing_since", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
    Column("disabled_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("webhook_endpoints_user", "user_id"),
    CheckConstraint(
        "rate_limit_per_second IS NULL OR rate_limit_per_second > 0", name="webhook_endpoints_rate_limit_check"
    ),
    CheckConstraint("signature_scheme IN ('v1', 'v1a')", name="webhook_endpoints_signature_scheme_check"),
)

feed_items = Table(
    "feed_items",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dedup_key", String(64), nullable=False, unique=True),
    Column("user_id", String(128), nullable=False),
    Column("notification_type", String(64), nullable=False),
    Column("tournament_id", String(128)),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, server_default=""),
    Column("url", Text),
    Column("data", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("critical", Boolean, nullable=False, server_default=text("false")),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
    # Seen: shown to the user in the list or the bell (clears the "new" badge). Archived: hidden from the default
    # list until un-archived. Both counts leave archived items out. Migration 0008 also numbers a user's items in
    # commit order and announces every change (pg_notify) for the live stream: sinks/feed_live.py.
    Column("seen_at", DateTime(timezone=True)),
    Column("archived_at", DateTime(timezone=True)),
    Index("feed_items_user", "user_id", "id"),
    Index("feed_items_unread", "user_id", postgresql_where=text("read_at IS NULL AND archived_at IS NULL")),
    Index("feed_items_unseen", "user_id", postgresql_where=text("seen_at IS NULL AND archived_at IS NULL")),
)

# Channel switches: a paused channel's deliveries stay in the ledger (pending, due) and go out, oldest first, once
# it is resumed. A channel without a row is running.
channel_switches = Table(
    "channel_switches",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("reason", Text),
    Column("changed_by", String(128)),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Addresses a relay refused permanently (5xx to RCPT): no more mail to them, until the user sets another address
# (the key is the address, lower case) or an operator lifts it (crownstream email suppressions lift).
email_suppressions = Table(
    "email_suppressions",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("code", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("suppressed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Discord webhooks Discord said no longer exist (404 Unknown Webhook), by the SHA-256 of their URL (the URL holds the
# webhook's token: it is not stored). Not called again; a user who sets a new webhook URL is sent to again.
discord_gone_webhooks = Table(
    "discord_gone_webhooks",
    metadata,
    Column("url_sha256", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("gone_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
