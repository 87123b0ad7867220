"""Standard Webhooks signing and verification (https://www.standardwebhooks.com): v1 (HMAC-SHA256) on the
reference ``standardwebhooks`` package, v1a (Ed25519) on ``cryptography``.

    webhook-id         the delivery's dedup key: the same on every retry, so receivers deduplicate by it
    webhook-timestamp  seconds since the epoch at signing time (each attempt signs afresh)
    webhook-signature  one signature of '{id}.{timestamp}.{body}' per signing key, space-separated:
                       "v1,<base64 HMAC-SHA256>" for a ``whsec_`` secret, "v1a,<base64 Ed25519>" for a ``whsk_`` key

An endpoint signs with either scheme. v1's secret is shared with the receiver; v1a's private key (``whsk_``, the
32-byte Ed25519 seed, base64) never leaves the sender: the receiver is given the public key (``whpk_``, 32 bytes,
base64) and can verify but not sign — the spec's advice for receivers whose security the sender does not control.

During a key rotation an endpoint has several keys; every one signs, so a receiver that knows either the old or the
new key (of either scheme) accepts the message. A key's scheme is in its prefix.
"""

from __future__ import annotations

import base64
import functools
import secrets as _secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = [
    "SCHEMES",
    "Signer",
    "WebhookVerificationError",
    "generate_key",
    "generate_secret",
    "public_key",
    "public_key_of",
    "receiver_key",
    "scheme_of",
    "sign_headers",
    "signer",
    "verify",
    "verify_v1a",
]

SECRET_PREFIX = "whsec_"
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
SCHEMES = ("v1", "v1a")  # the spec's signature identifiers: symmetric HMAC-SHA256, asymmetric Ed25519
# How far a webhook-timestamp may be from the receiver's clock, either way (the reference verifier's tolerance).
TOLERANCE_S = 5 * 60


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret (24-64 random bytes, base64) as the spec recommends."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(nbytes)).decode()


def generate_key(scheme: str = "v1") -> str:
    """A new signing key of ``scheme``: a ``whsec_`` secret (v1) or a ``whsk_`` Ed25519 private key (v1a)."""
    if scheme == "v1":
        return generate_secret()
    if scheme == "v1a":
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode()
    raise ValueError(f"unknown signature scheme {scheme!r}; one of {list(SCHEMES)}")


def scheme_of(key: str) -> str:
    """The scheme a stored signing key signs with, from its prefix."""
    return "v1a" if key.startswith(PRIVATE_KEY_PREFIX) else "v1"


def _private_key(key: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(key[len(PRIVATE_KEY_PREFIX) :], validate=True)
        # 32 bytes: the seed (RFC 8032's private key); 64: libsodium's seed || public key.
        return Ed25519PrivateKey.from_private_bytes(raw[:32] if len(raw) == 64 else raw)
    except ValueError:  # the key itself stays out of the message: it is a secret
        raise ValueError("a whsk_ key must be the base64 of a 32-byte Ed25519 private key") from None


@functools.lru_cache(maxsize=1024)
def public_key(key: str) -> Ed25519PublicKey:
    """A ``whpk_`` key decoded (cached: a receiver verifies many messages with one key)."""
    if not key.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError("an Ed25519 public key starts with whpk_")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(key[len(PUBLIC_KEY_PREFIX) :], validate=True))
    except ValueError:
        raise ValueError("a whpk_ key must be the base64 of a 32-byte Ed25519 public key") from None


def public_key_of(private_key: str) -> str:
    """The ``whpk_`` public key of a ``whsk_`` private key: what the endpoint's owner verifies with."""
    raw = _private_key(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def receiver_key(signing_key: str) -> str:
    """What the receiver verifies a signing key's signatures with: the secret itself (v1), its public key (v1a)."""
    return public_key_of(signing_key) if scheme_of(signing_key) == "v1a" else signing_key


class _Ed25519Signer:
    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = _private_key(key)

    def sign(self, msg_id: str, timestamp: datetime, body: bytes) -> str:
        signed = f"{msg_id}.{int(timestamp.timestamp())}.".encode() + body
        return "v1a," + base64.b64encode(self._key.sign(signed)).decode()


class Signer:
    """Signs with one endpoint's keys. Each key is decoded once, here, instead of on every delivery (a ``Webhook``
    per secret and message decoded the base64 secret each time)."""

    __slots__ = ("_webhooks",)

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("an endpoint needs at least one secret to sign with")
        self._webhooks = tuple(
            _Ed25519Signer(secret) if scheme_of(secret) == "v1a" else Webhook(secret) for secret in secrets
        )

    def __repr__(self) -> str:
        return f"Signer({len(self._webhooks)} secrets)"  # never the secrets themselves (logs, tracebacks)

    def headers(self, msg_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
        # Whole seconds, the same in the header and in what every key signs.
        now = (now or datetime.now(UTC)).replace(microsecond=0)
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
    """For receivers: the parsed JSON body if a signature made with ``secret`` matches — a ``whsec_`` secret checks
    the v1 signatures, a ``whpk_`` public key the v1a ones — and the timestamp is within 5 minutes of now;
    ``WebhookVerificationError`` saying what is wrong otherwise."""
    if secret.startswith(PUBLIC_KEY_PREFIX):
        return orjson.loads(verify_v1a(body, headers, secret))
    return Webhook(secret).verify(body, dict(headers))


def verify_v1a(
    body: bytes | str, headers: Mapping[str, str], key: str | Ed25519PublicKey, now: datetime | None = None
) -> bytes:
    """The body, if one of its v1a signatures verifies with ``key`` (``whpk_``) and its timestamp is within
    ``TOLERANCE_S`` of ``now``; ``WebhookVerificationError`` saying what is wrong otherwise (the reference
    ``standardwebhooks`` verifier checks v1 only)."""
    payload = body.encode() if isinstance(body, str) else body
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError("Missing required headers")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("Invalid Signature Headers") from None
    now_s = (now or datetime.now(UTC)).timestamp()
    if timestamp < now_s - TOLERANCE_S:
        raise WebhookVerificationError("Message timestamp too old")
    if timestamp > now_s + TOLERANCE_S:
        raise WebhookVerificationError("Message timestamp too new")
    if isinstance(key, str):
        key = public_key(key)
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    for versioned in signatures.split(" "):
        version, _, encoded = versioned.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(encoded, validate=True), signed)
        except (InvalidSignature, ValueError):
            continue
        return payload
    raise WebhookVerificationError("No matching signature found")
