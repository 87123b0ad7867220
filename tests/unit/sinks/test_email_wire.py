"""The email sink's prebuilt message bytes are the bytes email.mime (compat32) builds for the same message, but
for the multipart boundary; and what the prebuilt layout does not cover is still built by email.mime."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from hypothesis import given
from hypothesis import strategies as st

from crownstream.schemas.deliveries import Contact, DeliveryRequest
from crownstream.settings import Settings
from crownstream.sinks.email import RenderedEmail, _mime_build, _prebuilt, _subject, build_message, render_email
from tests.unit.sinks.factories import NOW, email_request

BOUNDARY = re.compile(rb'boundary="([^"]+)"')


def same_but_boundary(prebuilt: bytes, reference: bytes) -> None:
    ours, theirs = BOUNDARY.search(prebuilt).group(1), BOUNDARY.search(reference).group(1)  # type: ignore[union-attr]
    # (both matched: a message without a boundary fails here with an AttributeError, which is a failure too)
    assert re.fullmatch(rb"={15}\d{19}==", ours)
    assert prebuilt == reference.replace(theirs, ours)


def top_headers(subject: str, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    return [
        ("From", "Crownstream <notifications@crownstream.invalid>"),
        ("To", "dora@example.com"),
        ("Subject", _subject(subject)),
        ("Date", "Sat, 14 Mar 2026 18:30:00 +0000"),
        ("Message-ID", f"<{'a' * 64}@crownstream.invalid>"),
        *(extra or []),
    ]


def request(**overrides) -> DeliveryRequest:
    fields = dict(
        title="Match 1: Team Alpha 2 - 1 Team Beta",
        body="Round of 16, best of 3.",
        contact=Contact(email="u1@example.com", display_name="Ada"),
    )
    return email_request(**{**fields, **overrides})


@given(
    subject=st.text(min_size=1, max_size=300),
    value=st.text(max_size=1200),
    body=st.text(max_size=500),
    html=st.text(max_size=500),
)
def test_prebuilt_bytes_are_email_mimes_or_email_mime_builds_them(subject, value, body, html):
    top = top_headers(subject, [("X-Crownstream-Type", value)])
    rendered = RenderedEmail(subject, body, html, None)
    prebuilt = _prebuilt(top, rendered, "k" * 64)
    if prebuilt is not None:
        same_but_boundary(prebuilt, _mime_build(top, rendered))


@given(
    subject=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=256),
    body=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=2000),
)
def test_rendered_mail_takes_the_prebuilt_path_whatever_its_text(subject, body):
    """Subjects and bodies are user text (team names, emoji): ASCII or not, they must not fall back to the slow
    build, and the bytes must be email.mime's."""
    top = top_headers(subject, [("X-Crownstream-Type", "match.result")])
    rendered = RenderedEmail(subject, body, f"<p>{body}</p>", "https://x/u")
    prebuilt = _prebuilt(top, rendered, "0" * 64)
    assert prebuilt is not None
    same_but_boundary(prebuilt, _mime_build(top, rendered))
    parsed = message_from_bytes(prebuilt, policy=policy.default)
    assert parsed["Subject"].split() == subject.split()  # (a reader unfolds and trims the header's whitespace)
    assert parsed.get_body(("plain",)).get_content() == body


def test_a_header_with_a_line_break_is_left_to_email_mime():
    top = top_headers("Match won\r\nBcc: everyone@example.com")
    assert _prebuilt(top, RenderedEmail("x", "text", "<p>html</p>", None), "k" * 64) is None


def test_the_sink_sends_prebuilt_bytes_a_reader_parses_back():
    settings = Settings(email_message_id_domain="mail.test")
    for title in ("Match 1: Team Alpha 2 - 1 Team Beta", "Équipe Ω won 3–2 " * 8, "🏆 " * 80):
        req = request(title=title)
        rendered = render_email(req, "https://crownstream.example", "test-secret")
        outgoing = build_message(req, rendered, settings, now=NOW)
        assert BOUNDARY.search(outgoing.data).group(1).startswith(b"===============")  # type: ignore[union-attr]
        # (the prebuilt boundary's digits come from the dedup key: the same bytes on a re-send)
        assert outgoing.data == build_message(req, rendered, settings, now=NOW).data
        msg = message_from_bytes(outgoing.data, policy=policy.default)
        assert msg["Subject"] == title
        assert msg["Message-ID"] == f"<{req.dedup_key}@mail.test>"
        assert msg["From"].addresses[0].addr_spec == "notifications@crownstream.invalid"
        assert msg.get_body(("plain",)).get_content() == rendered.text
        assert msg.get_body(("html",)).get_content() == rendered.html
        assert max(len(line) for line in outgoing.data.split(b"\r\n")) <= 998
