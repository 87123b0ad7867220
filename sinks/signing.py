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
import functools
import secrets as _secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["Signer", "WebhookVerificationError", "generate_secret", "sign_headers", "signer", "verify"]

SECRET_PREFIX = "whsec_"


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret (24-64 random bytes, base64) as the spec recommends."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


class Signer:
    """Signs with one endpoint's secrets. Each secret is decoded into its key once, here, instead of on every
    delivery (a ``Webhook`` per secret and message decoded the base64 secret each time)."""

    __slots__ = ("_webhooks",)

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("an endpoint needs at least one secret to sign with")
        self._webhooks = tuple(Webhook(secret) for secret in secrets)

    def __repr__(self) -> str:
        return f"Signer({len(self._webhooks)} secrets)"  # never the secrets themselves (logs, tracebacks)

    def headers(self, msg_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
        now = now or datetime.now(UTC)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(webhook.sign(msg_id, now, body) for webhook in self._webhooks),
        }


@functools.lru_cache(maxsize=10_000)
def signer(secrets: tuple[str, ...]) -> Signer:
    """The signer of an endpoint's current secrets (a rotation gives a new tuple, so a new signer)."""
    return Signer(secrets)


def sign_headers(msg_id: str, body: bytes, secrets: Sequence[str], now: datetime | None = None) -> dict[str, str]:
    return signer(tuple(secrets)).headers(msg_id, body, now)


def verify(body: bytes | str, headers: Mapping[str, str], secret: str) -> Any:
    """For receivers: the parsed JSON body if a v1 signature made with ``secret`` matches and the timestamp is
    within 5 minutes of now; ``WebhookVerificationError`` saying what is wrong otherwise."""
    return Webhook(secret).verify(body, dict(headers))
