"""The benchmark's cheap paths keep their meaning: the SMTP peer's Message-ID reader agrees with the standard
library's header parser, and the cached per-endpoint signer signs exactly as the reference library does."""

from __future__ import annotations

from email import policy
from email.parser import BytesHeaderParser

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from crownstream.devpeers.smtp import message_id_of
from crownstream.schemas.deliveries import Contact, DeliveryRequest
from crownstream.settings import Settings
from crownstream.sinks.email import build_message, render_email
from crownstream.sinks.signing import Signer, WebhookVerificationError, generate_secret, sign_headers, signer, verify
from tests.unit.sinks.factories import NOW, email_request


def parsed_message_id(data: bytes) -> str:
    return (BytesHeaderParser(policy=policy.compat32).parsebytes(data, headersonly=True)["Message-ID"] or "").strip()


def request(email: str) -> DeliveryRequest:
    return email_request(contact=Contact(email=email))


def test_the_peer_reads_the_message_id_of_every_kind_of_message_the_sink_sends():
    # ASCII addresses take the prebuilt bytes; an internationalised one the modern API (which folds at 78).
    for email in ("a@example.com", "jürgen@bücher.example"):
        req = request(email)
        data = build_message(req, render_email(req, "https://x", "k"), Settings()).data
        assert message_id_of(data) == parsed_message_id(data) == f"<{req.dedup_key}@crownstream.invalid>"


@given(
    before=st.lists(
        st.sampled_from([b"Subject: hi", b"X-A: b", b"Message-IDx: no", b"Subject: a\r\n  folded"]), max_size=3
    ),
    value=st.from_regex(rb"\A<[a-z0-9.@]{1,40}>\Z"),
    fold=st.booleans(),
    body=st.sampled_from([b"", b"Message-ID: <not-a-header@body>\r\n"]),
)
def test_message_id_reader_agrees_with_the_header_parser(before, value, fold, body):
    field = b"Message-ID:" + (b"\r\n " if fold else b" ") + value
    data = b"\r\n".join([*before, field, b"To: x@example.com"]) + b"\r\n\r\n" + body
    assert message_id_of(data) == parsed_message_id(data) == value.decode()


def test_a_message_without_a_message_id_counts_under_the_empty_id():
    data = b"Subject: hi\r\n\r\nMessage-ID: <in-the-body@x>\r\n"
    assert message_id_of(data) == parsed_message_id(data) == ""


def test_signer_signs_as_the_reference_library_with_every_secret():
    old, new = generate_secret(), generate_secret()
    body = b'{"type": "match.result", "data": {"title": "\xc3\x89quipe"}}'
    headers = Signer([new, old]).headers("msg_1", body, now=NOW)
    expected = " ".join(Webhook(secret).sign("msg_1", NOW, body) for secret in (new, old))
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": expected,
    }
    assert sign_headers("msg_1", body, [new, old], now=NOW) == headers
    fresh = sign_headers("msg_2", body, [new])
    assert verify(body, fresh, new) == {"type": "match.result", "data": {"title": "Équipe"}}
    with pytest.raises(WebhookVerificationError):
        verify(body, fresh, old)


def test_signer_is_cached_per_secrets_and_a_rotation_gets_a_new_one():
    a, b = generate_secret(), generate_secret()
    assert signer((a,)) is signer((a,))
    assert signer((b, a)) is not signer((a,))


def test_signer_never_shows_its_secrets():
    secret = generate_secret()
    text = repr(Signer([secret])) + str(Signer([secret]))
    assert secret not in text and secret.removeprefix("whsec_") not in text
