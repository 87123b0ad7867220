"""The contract between notification fan-out (agents/notifications*) and the sinks (sinks/): a delivery request.

Fan-out writes one ``DeliveryRequest`` per (user, channel) to that channel's topic, keyed by ``user_id``.
A sink consumes its channel's topic and delivers each request at most once per ``dedup_key``: the key is a
hash of (source event id, user, channel, notification type), so a replayed or re-fanned-out event yields
the same key and the sink's ledger turns the second attempt into a no-op.

Versioned like the events: a sink accepts only ``SUPPORTED_DELIVERY_VERSIONS`` and dead-letters the rest.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import Field, ValidationError

from crownstream.schemas.common import Id, Model, UtcDatetime
from crownstream.schemas.errors import InvalidDelivery as InvalidDelivery

Channel = Literal["in_app", "email", "discord", "webhook"]
CHANNELS: tuple[str, ...] = ("in_app", "email", "discord", "webhook")

SUPPORTED_DELIVERY_VERSIONS = frozenset({1})


def dedup_key(source_id: str, user_id: str, channel: str, notification_type: str) -> str:
    """The exactly-once identity of one notification to one user on one channel.

    ``source_id`` is the event id of what caused it (or the digest / scheduled-notification id). Hex SHA-256,
    so it is safe as a Message-ID local part, a webhook-id and a primary key alike.
    """
    material = "\x1f".join((source_id, user_id, channel, notification_type)).encode()
    return hashlib.sha256(material).hexdigest()


class Contact(Model):
    """Where a user is reached, from their preferences. A channel whose address is missing is skipped by
    fan-out (counted), never sent to a guessed address."""

    email: str | None = Field(None, max_length=320)
    discord_webhook_url: str | None = Field(None, max_length=2000)
    display_name: str | None = Field(None, max_length=200)
    locale: str = Field("en", max_length=16)
    timezone: str = Field("UTC", max_length=64)


class DigestItem(Model):
    """One notification folded into a digest."""

    notification_type: str
    source_event_id: str
    occurred_at: UtcDatetime
    title: str
    body: str = ""
    url: str | None = None


class DeliveryRequest(Model):
    schema_version: int = Field(1, ge=1)
    dedup_key: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    channel: Channel
    kind: Literal["single", "digest"] = "single"
    notification_type: str = Field(min_length=1, max_length=64, description="Catalog type, e.g. match.result.")
    user_id: Id
    source_event_id: str = Field(min_length=1, max_length=200, description="Event, digest or schedule id.")
    tournament_id: Id | None = None
    critical: bool = Field(False, description="Payments and payouts: sent despite opt-outs; no unsubscribe link.")
    created_at: UtcDatetime = Field(description="When the source event occurred (deterministic across replays).")
    title: str = Field(min_length=1, max_length=256)
    body: str = Field("", max_length=4000)
    url: str | None = Field(None, max_length=2000, description="Where the notification links to.")
    data: dict[str, Any] = Field(default_factory=dict, description="Type-specific fields for templates.")
    contact: Contact = Field(default_factory=Contact)
    items: list[DigestItem] = Field(default_factory=list, description="kind=digest: the notifications it folds.")
    traceparent: str | None = Field(
        None,
        max_length=55,
        description="W3C trace context of the fan-out that made it: set by the sink from the record's header and "
        "kept in the ledger, so a retry hours later still continues the source event's trace.",
    )

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


def decode_delivery(raw: bytes | None) -> DeliveryRequest:
    """Bytes -> request, or ``InvalidDelivery`` with the reason (the sink dead-letters it and goes on)."""
    if not raw:
        raise InvalidDelivery("empty record; a delivery request is a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidDelivery(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidDelivery(f"a delivery request is a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if version not in SUPPORTED_DELIVERY_VERSIONS:
        raise InvalidDelivery(
            f"delivery schema_version {version!r} is not supported "
            f"(supported: {sorted(SUPPORTED_DELIVERY_VERSIONS)}); upgrade the sink workers"
        )
    try:
        return DeliveryRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(request)'}: {e['msg']}" for e in exc.errors())
        raise InvalidDelivery(f"invalid delivery request: {problems}") from None
