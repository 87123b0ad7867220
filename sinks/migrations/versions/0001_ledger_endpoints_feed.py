"""Delivery ledger, webhook endpoints, in-app feed.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False, server_default=""),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("notification_type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("payload_digest", sa.String(64)),
        sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("dedup_key", "target", name="deliveries_pkey"),
        sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed', 'dead')", name="deliveries_state_check"),
    )
    op.create_index(
        "deliveries_due",
        "deliveries",
        ["channel", "next_attempt_at"],
        postgresql_where=sa.text("state IN ('pending', 'failed', 'sending')"),
    )
    op.create_index("deliveries_prune", "deliveries", ["sent_at"], postgresql_where=sa.text("state = 'sent'"))

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secrets", ARRAY(sa.Text), nullable=False),
        sa.Column("event_types", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("webhook_endpoints_user", "webhook_endpoints", ["user_id"])

    op.create_table(
        "feed_items",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("notification_type", sa.String(64), nullable=False),
        sa.Column("tournament_id", sa.String(128)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("url", sa.Text),
        sa.Column("data", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("critical", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("read_at", sa.DateTime(timezone=True)),
    )
    op.create_index("feed_items_user", "feed_items", ["user_id", "id"])
    op.create_index("feed_items_unread", "feed_items", ["user_id"], postgresql_where=sa.text("read_at IS NULL"))


def downgrade() -> None:
    op.drop_table("feed_items")
    op.drop_table("webhook_endpoints")
    op.drop_table("deliveries")
