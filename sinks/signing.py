"""Standard Webhooks signing and verification (https://www.standardwebhooks.com), on the reference
``standardwebhooks`` package.

    webhook-id         the delivery's dedup key: the same on every retry, so receivers deduplicate by it
    webhook-timestamp  seconds since the epoch at signing time (each attempt signs afresh)
    webhook-signature  "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>", one per secret, space-separated

During a key rotation an endpoint has several secrets; every one signs, so a receiver that knows either
the old or the new secret accepts the message.
"""

from __future__ import annotations

import base64
import secrets as _secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookVerificationError", "generate_secret", "sign_headers", "verify"]

SECRET_PREFIX = "whsec_"


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret (24-64 random bytes, base64) as the spec recommends."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def sign_headers(msg_id: str, body: bytes, secrets: Sequence[str], now: datetime | None = None) -> dict[str, str]:
    if not secrets:
        raise ValueError("an endpoint needs at least one secret to sign with")
    now = now or datetime.now(UTC)
    data = body.decode()
    signatures = " ".join(Webhook(secret).sign(msg_id, now, data) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }


def verify(body: bytes | str, headers: Mapping[str, str], secret: str) -> Any:
    """For receivers: the parsed JSON body if a v1 signature made with ``secret`` matches and the timestamp is
    within 5 minutes of now; ``WebhookVerificationError`` saying what is wrong otherwise."""
    return Webhook(secret).verify(body, dict(headers))
