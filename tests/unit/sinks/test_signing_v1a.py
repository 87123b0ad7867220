"""Standard Webhooks v1a (Ed25519) signatures (sinks/signing.py): keys in the spec's whsk_/whpk_ forms, signatures a
plain Ed25519 verifier accepts, a rotation that signs with both schemes, and private keys that never show."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from crownstream.sinks.signing import (
    Signer,
    WebhookVerificationError,
    generate_key,
    generate_secret,
    public_key_of,
    receiver_key,
    scheme_of,
    verify,
    verify_v1a,
)
from crownstream.sinks.webhook_endpoints import Endpoint
from tests.unit.sinks.factories import NOW

BODY = b'{"type":"match.result","data":{"title":"\xc3\x89quipe"}}'

# RFC 8032, section 7.1, test 1: the private key (seed) and its public key.
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def test_keys_take_the_spec_s_forms():
    private = generate_key("v1a")
    assert private.startswith("whsk_") and len(base64.b64decode(private[5:])) == 32
    public = public_key_of(private)
    assert public.startswith("whpk_") and len(base64.b64decode(public[5:])) == 32
    assert scheme_of(private) == "v1a" and scheme_of(generate_key("v1")) == "v1"
    assert receiver_key(private) == public  # the owner is given the public key ...
    secret = generate_secret()
    assert receiver_key(secret) == secret  # ... or, for v1, the shared secret
    assert generate_key("v1a") != private
    with pytest.raises(ValueError, match="unknown signature scheme"):
        generate_key("v2")


def test_the_public_key_is_the_rfc_8032_one():
    private = "whsk_" + base64.b64encode(RFC_SEED).decode()
    assert public_key_of(private) == "whpk_" + base64.b64encode(RFC_PUBLIC).decode()
    # libsodium's 64-byte form (seed || public key) is read too.
    assert public_key_of("whsk_" + base64.b64encode(RFC_SEED + RFC_PUBLIC).decode()) == public_key_of(private)


def test_a_v1a_signature_is_ed25519_over_id_timestamp_and_body():
    private = generate_key("v1a")
    headers = Signer([private]).headers("msg_1", BODY, now=NOW)
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    version, _, encoded = headers["webhook-signature"].partition(",")
    assert version == "v1a"
    # Checked with the bare primitive, not with our own verifier.
    raw_public = base64.b64decode(public_key_of(private)[5:])
    Ed25519PublicKey.from_public_bytes(raw_public).verify(
        base64.b64decode(encoded), b"msg_1." + headers["webhook-timestamp"].encode() + b"." + BODY
    )


def test_the_receiver_verifies_a_v1a_delivery_and_refuses_a_tampered_one():
    private = generate_key("v1a")
    public = public_key_of(private)
    headers = Signer([private]).headers("msg_1", BODY)
    assert verify(BODY, headers, public) == {"type": "match.result", "data": {"title": "Équipe"}}
    assert verify_v1a(BODY, headers, public) == BODY
    tampered = [
        (BODY.replace(b"match", b"merch"), headers),  # the body
        (BODY, {**headers, "webhook-id": "msg_2"}),  # the id (a replay under another id)
        (BODY, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}),  # the time
        (BODY, {**headers, "webhook-signature": "v1a," + base64.b64encode(b"\0" * 64).decode()}),
        (BODY, {**headers, "webhook-signature": "v1a,not base64!"}),
    ]
    for body, bad in tampered:
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            verify(body, bad, public)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(BODY, headers, public_key_of(generate_key("v1a")))  # another endpoint's key


def test_v1a_checks_the_timestamp_and_the_headers():
    private = generate_key("v1a")
    public = public_key_of(private)
    old = Signer([private]).headers("msg_1", BODY, now=NOW)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_v1a(BODY, old, public, now=NOW + timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="too new"):
        verify_v1a(BODY, old, public, now=NOW - timedelta(minutes=6))
    assert verify_v1a(BODY, old, public, now=NOW + timedelta(minutes=4)) == BODY
    with pytest.raises(WebhookVerificationError, match="Missing"):
        verify_v1a(BODY, {"webhook-id": "msg_1"}, public)
    with pytest.raises(WebhookVerificationError, match="Invalid"):
        verify_v1a(BODY, {**old, "webhook-timestamp": "soon"}, public, now=NOW)


def test_a_rotation_between_schemes_signs_with_both():
    """v1 -> v1a during the grace window: one signature per key, each receiver finds its own."""
    old_secret, new_private = generate_secret(), generate_key("v1a")
    headers = Signer([new_private, old_secret]).headers("msg_1", BODY)  # now: the reference verifier checks the time
    versions = [sig.split(",", 1)[0] for sig in headers["webhook-signature"].split(" ")]
    assert versions == ["v1a", "v1"]
    # The receiver still on the old secret (the reference library) and the one switched to the public key.
    assert Webhook(old_secret).verify(BODY, headers) == {"type": "match.result", "data": {"title": "Équipe"}}
    assert verify_v1a(BODY, headers, public_key_of(new_private)) == BODY
    # Only the v1 signature: a v1a receiver refuses it.
    v1_only = Signer([old_secret]).headers("msg_1", BODY)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify_v1a(BODY, v1_only, public_key_of(new_private))


def test_private_keys_never_show():
    private = generate_key("v1a")
    raw = private.removeprefix("whsk_")
    text = repr(Signer([private])) + str(Signer([private]))
    assert raw not in text
    endpoint = Endpoint(
        "e1", "ada", "https://x.example", (private, generate_secret()), (), True, None, signature_scheme="v1a"
    )
    public = repr(endpoint.public())
    assert raw not in public and "whsec_" not in public
    assert raw not in repr(endpoint) and "whsec_" not in repr(endpoint) and "e1" in repr(endpoint)
    assert endpoint.public()["public_keys"] == [public_key_of(private)]
    # After the grace window the old key no longer signs and its public key is no longer listed.
    rotated = replace(endpoint, secrets=(generate_key("v1a"), private), previous_secrets_until=NOW)
    assert rotated.public()["public_keys"] == [public_key_of(rotated.secrets[0])]
    with pytest.raises(ValueError) as caught:
        Signer(["whsk_" + raw[:-8]])  # a damaged key: the message says what is wrong, without the key
    assert raw[:-8] not in str(caught.value) and "32-byte" in str(caught.value)
