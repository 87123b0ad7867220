"""Delivery requests for the sink tests: one valid email request, with any field overridden."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crownstream.schemas.deliveries import Contact, DeliveryRequest, dedup_key

NOW = datetime(2026, 3, 14, 18, 30, tzinfo=UTC)


def email_request(**overrides: Any) -> DeliveryRequest:
    fields: dict[str, Any] = dict(
        dedup_key=dedup_key("evt-1", "u1", "email", "match.result"),
        channel="email",
        notification_type="match.result",
        user_id="u1",
        source_event_id="evt-1",
        created_at=NOW,
        title="Match won",
        body="You won 2-1",
        contact=Contact(email="a@example.com"),
    )
    return DeliveryRequest(**{**fields, **overrides})
