"""Webhook endpoints: a rate limit set by their owner, and a choice of signature scheme (Standard Webhooks v1 HMAC
or v1a Ed25519).

- ``rate_limit_per_second``: at most this many deliveries a second to the endpoint (NULL: no limit). Deliveries
  over it wait in the ledger; they never fail or spend an attempt.
- ``signature_scheme``: what the newest key in ``secrets`` is — 'v1' (a ``whsec_`` HMAC secret) or 'v1a' (a
  ``whsk_`` Ed25519 private key; the owner was given its ``whpk_`` public key). Keys kept through a rotation's grace
  window carry their own scheme in their prefix, so a switch of scheme also rotates without a gap.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("rate_limit_per_second", sa.Float))
    op.create_check_constraint(
        "webhook_endpoints_rate_limit_check",
        "webhook_endpoints",
        "rate_limit_per_second IS NULL OR rate_limit_per_second > 0",
    )
    op.add_column(
        "webhook_endpoints",
        sa.Column("signature_scheme", sa.String(8), nullable=False, server_default=sa.text("'v1'")),
    )
    op.create_check_constraint(
        "webhook_endpoints_signature_scheme_check", "webhook_endpoints", "signature_scheme IN ('v1', 'v1a')"
    )


def downgrade() -> None:
    op.drop_constraint("webhook_endpoints_signature_scheme_check", "webhook_endpoints")
    op.drop_column("webhook_endpoints", "signature_scheme")
    op.drop_constraint("webhook_endpoints_rate_limit_check", "webhook_endpoints")
    op.drop_column("webhook_endpoints", "rate_limit_per_second")
