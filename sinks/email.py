"""Email sink: jinja2 templates (HTML + text, shared layout, autoescaped HTML), sent over SMTP with
aiosmtplib on a few reused connections.

Every notification type renders with ``email/<type>.html|txt`` if such a template exists, else with the
generic ``email/notification.*``; digests with ``email/digest.*``. ``Message-ID`` is derived from the dedup
key, so a re-send after a crash carries the same id and mail clients thread/deduplicate it. Non-critical
mail carries ``List-Unsubscribe`` with an https one-click URL and ``List-Unsubscribe-Post`` (RFC 8058).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTPUTF8, compat32
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from urllib.parse import quote

import aiosmtplib
import jinja2
from async_lru import alru_cache

from crownstream.notifications.unsubscribe import ALL_TYPES, unsubscribe_key
from crownstream.schemas.deliveries import Contact, DeliveryRequest, DigestItem
from crownstream.settings import Settings
from crownstream.sinks.base import Sink
from crownstream.sinks.ledger import Claimed, Outcome, clean_text
from crownstream.sinks.suppressions import Suppression, suppress, suppression_of

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("crownstream.sinks", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=False,
    keep_trailing_newline=True,
    # Templates ship inside the package and change only with a deploy: without this jinja2 stats each template
    # file on every get_template (five per email, with the layout), a third of the render time.
    auto_reload=False,
)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    unsubscribe_url: str | None

    @property
    def digest(self) -> str:
        return hashlib.sha256("\x1f".join((self.subject, self.text, self.html)).encode()).hexdigest()


def _template(name: str, ext: str) -> jinja2.Template:
    return _env.get_template(f"email/{name}.{ext}")


@functools.lru_cache(maxsize=1024)
def template_names(kind: str, notification_type: str) -> str:
    # Cached: jinja2 remembers templates it found, not ones it did not, so a type without a template of its own
    # searched the loader (and raised) on every email. The notification types are a small catalogue.
    if kind == "digest":
        return "digest"
    specific = notification_type.replace("/", "_")
    try:
        _env.get_template(f"email/{specific}.html")
        return specific
    except jinja2.TemplateNotFound:
        return "notification"


def unsubscribe_url(request: DeliveryRequest, public_url: str, secret: str) -> str | None:
    """The one-click link (web/unsubscribe.py): a digest's unsubscribes from all email, any other mail from
    its type; the key is an HMAC under the deployment's secret, so links cannot be forged for other users."""
    if request.critical:
        return None
    kind = ALL_TYPES if request.kind == "digest" else request.notification_type
    return (
        f"{public_url.rstrip('/')}/users/{quote(request.user_id, safe='')}/unsubscribe"
        f"?type={quote(kind, safe='')}&key={unsubscribe_key(secret, request.user_id, kind)}"
    )


def _facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Scalar fields of the request's data, for the generic template's table."""
    return [
        (k.replace("_", " ").capitalize(), str(v))
        for k, v in data.items()
        if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    ][:20]


def render_email(request: DeliveryRequest, public_url: str, unsubscribe_secret: str) -> RenderedEmail:
    name = template_names(request.kind, request.notification_type)
    unsub = unsubscribe_url(request, public_url, unsubscribe_secret)
    context = {
        "subject": request.title,
        "title": request.title,
        "body": request.body,
        "url": request.url,
        "items": request.items,
        "data": request.data,
        "facts": _facts(request.data),
        "contact": request.contact,
        "notification_type": request.notification_type,
        "critical": request.critical,
        "unsubscribe_url": unsub,
        "tournament_id": request.tournament_id,
    }
    return RenderedEmail(
        request.title, _template(name, "txt").render(context), _template(name, "html").render(context), unsub
    )


# The message leaves as bytes with CRLF line ends (what SMTP's DATA carries), in the layout the standard
# library's email.mime classes give under the compat32 policy. Nearly every message takes the prebuilt path below:
# the fixed parts of that layout (the multipart skeleton and the two parts' headers) are constants, the bodies are
# base64 (binascii, 76-character lines) and the headers are values that need no encoding or folding; a unit test
# holds its bytes equal to the email.mime build's. Anything else (a header value with a control character or one
# that would need folding, a body that is not valid text) is built by email.mime itself. Building every message
# with email.mime cost ~1.4 ms (its generator folds each header through email.header and compiles a regex per
# boundary) where the whole SMTP conversation with a local relay costs the client well under a millisecond; the
# modern EmailMessage API is about 5x slower still.
# Lines up to SMTP's 998: the long headers are structured ASCII that folding cannot help (a 64-hex Message-ID, the
# unsubscribe URL) and that compat32 would otherwise break before their value; encoded words are folded at 76.
SUPPRESSION_CACHE_S = 5.0  # how stale a worker's view of the suppressed addresses may be
SUPPRESSION_CACHE_SIZE = 100_000
_SMTP_WIRE = compat32.clone(linesep="\r\n", max_line_length=998)
_MAX_LINE = 998


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A message as it goes over SMTP: the envelope and the bytes of DATA."""

    sender: str
    recipient: str
    data: bytes
    smtputf8: bool = False  # an address is not ASCII: sent with SMTPUTF8 (RFC 6531), headers in raw UTF-8


@functools.lru_cache(maxsize=64)
def _address(value: str) -> str:
    """A From/To header: the display name RFC 2047-encoded when it is not ASCII; the address as given."""
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address


@functools.lru_cache(maxsize=64)
def _envelope_sender(email_from: str) -> str:
    return parseaddr(email_from)[1]


def _headers(
    request: DeliveryRequest, rendered: RenderedEmail, settings: Settings, now: datetime | None
) -> list[tuple[str, str]]:
    headers = [
        ("Date", format_datetime(now or datetime.now(UTC))),
        ("Message-ID", f"<{request.dedup_key}@{settings.email_message_id_domain}>"),
        ("X-Crownstream-Type", request.notification_type),
    ]
    if rendered.unsubscribe_url:
        headers += [
            ("List-Unsubscribe", f"<{rendered.unsubscribe_url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
    else:
        headers.append(("Auto-Submitted", "auto-generated"))
    return headers


def _subject(subject: str) -> str:
    return subject if subject.isascii() else Header(subject, "utf-8").encode(linesep="\r\n", maxlinelen=76)


def build_message(
    request: DeliveryRequest, rendered: RenderedEmail, settings: Settings, now: datetime | None = None
) -> OutgoingEmail:
    if not request.contact.email:
        raise ValueError("the request has no contact.email")
    sender = _envelope_sender(settings.email_from)
    recipient = request.contact.email
    headers = _headers(request, rendered, settings, now)
    if not (sender + recipient).isascii():
        # Internationalised addresses cannot be RFC 2047-encoded: the modern API writes them as UTF-8 for SMTPUTF8.
        modern = EmailMessage()
        for name, value in [("From", settings.email_from), ("To", recipient), ("Subject", rendered.subject), *headers]:
            modern[name] = value
        modern.set_content(rendered.text)
        modern.add_alternative(rendered.html, subtype="html")
        return OutgoingEmail(sender, recipient, modern.as_bytes(policy=SMTPUTF8), smtputf8=True)
    top = [
        ("From", _address(settings.email_from)),
        ("To", recipient),
        ("Subject", _subject(rendered.subject)),
        *headers,
    ]
    data = _prebuilt(top, rendered, request.dedup_key)
    if data is None:
        data = _mime_build(top, rendered)
    return OutgoingEmail(sender, recipient, data)


def _mime_build(top: list[tuple[str, str]], rendered: RenderedEmail) -> bytes:
    """The message built and flattened by email.mime (compat32): the reference the prebuilt path matches."""
    message = MIMEMultipart("alternative")
    for name, value in top:
        message[name] = value
    message.attach(MIMEText(rendered.text, "plain", "utf-8"))
    message.attach(MIMEText(rendered.html, "html", "utf-8"))
    return message.as_bytes(policy=_SMTP_WIRE)


_PART = 'Content-Type: text/{}; charset="utf-8"\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n'
_PLAIN_PART = _PART.format("plain").encode()
_HTML_PART = _PART.format("html").encode()
_ENCODED_SUBJECT_LINE = 76  # Header.encode's maxlinelen above: its folded lines are final


def _is_plain_header(name: str, value: str) -> bool:
    """A value compat32 writes out unchanged: printable ASCII, one line of at most 998 characters in all."""
    return value.isascii() and value.isprintable() and len(name) + 2 + len(value) <= _MAX_LINE


def _is_encoded_subject(value: str) -> bool:
    """Header.encode's output for a non-ASCII subject: RFC 2047 words on lines already folded (CRLF + space)."""
    lines = value.split("\r\n ")
    return value.startswith("=?utf-8?") and all(
        line.isascii() and line.isprintable() and len(line) <= _ENCODED_SUBJECT_LINE for line in lines
    )


def _base64_body(text: str) -> bytes | None:
    if not text:
        return None
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: email.mime decides what becomes of them
        return None
    return base64.encodebytes(raw).replace(b"\n", b"\r\n")


def _prebuilt(top: list[tuple[str, str]], rendered: RenderedEmail, dedup_key: str) -> bytes | None:
    """The message's bytes, or None when a value is outside what this layout covers (email.mime builds it)."""
    for name, value in top:
        if not (_is_plain_header(name, value) or (name == "Subject" and _is_encoded_subject(value))):
            return None
    text, html = _base64_body(rendered.text), _base64_body(rendered.html)
    if text is None or html is None:
        return None
    # The boundary's form is email.mime's ("=" * 15 + 19 digits + "=="), its digits from the dedup key, so a re-send
    # carries the same bytes but for Date. A base64 body has no "-", so the boundary cannot occur inside a part.
    digits = int(dedup_key.encode().hex()[:30] or "0", 16) % 10**19
    boundary = f"==============={digits:019d}=="
    delimiter = f"--{boundary}\r\n".encode()
    head = [f'Content-Type: multipart/alternative; boundary="{boundary}"\r\nMIME-Version: 1.0\r\n']
    head += [f"{name}: {value}\r\n" for name, value in top]
    head.append("\r\n")
    return b"".join(
        (
            "".join(head).encode("ascii"),
            delimiter,
            _PLAIN_PART,
            text,
            b"\r\n",
            delimiter,
            _HTML_PART,
            html,
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )


class SmtpPool:
    """A few SMTP connections, each used by one send at a time and kept open between sends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(settings.smtp_connections):
            self._idle.put_nowait(None)  # opened on first use

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_s,
            use_tls=s.smtp_use_tls,
            start_tls=s.smtp_starttls if s.smtp_starttls else False,
            username=s.smtp_username,
            password=s.smtp_password,
        )

    async def send(self, message: OutgoingEmail) -> None:
        client = await self._idle.get()
        try:
            for attempt in (1, 2):
                if client is None or not client.is_connected:
                    client = self._client()
                    await client.connect()
                try:
                    await client.sendmail(
                        message.sender,
                        [message.recipient],
                        message.data,
                        mail_options=["SMTPUTF8"] if message.smtputf8 else None,
                    )
                    return
                except aiosmtplib.SMTPServerDisconnected:
                    # A kept-alive connection the server closed meanwhile: reopen once.
                    client = None
                    if attempt == 2:
                        raise
        except BaseException:
            if client is not None:
                client.close()
            client = None
            raise
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except aiosmtplib.SMTPException:
                    client.close()


class EmailSink(Sink):
    channel = "email"

    def target_of(self, claimed: Claimed) -> str:
        return claimed.dedup_key  # one relay, whose connection pool already bounds what is in flight

    async def start(self) -> None:
        self.pool = SmtpPool(self.settings)

        # A suppressed address is rare; looking it up per message must not cost a round trip each time.
        @alru_cache(maxsize=SUPPRESSION_CACHE_SIZE, ttl=SUPPRESSION_CACHE_S)
        async def suppression(address: str) -> Suppression | None:
            return await suppression_of(self.ledger.engine, address)

        self._suppression = suppression

    async def stop(self) -> None:
        await self.pool.close()

    async def deliver(self, claimed: Claimed) -> Outcome:
        request = claimed.request
        if not request.contact.email:
            return Outcome.dead("the request has no contact.email; fan-out must skip users without an address")
        address = request.contact.email
        suppressed = await self._suppression(address.lower())
        if suppressed is not None:
            return Outcome.dead(
                f"{address} is suppressed since {suppressed.suppressed_at:%Y-%m-%d %H:%M} UTC: the relay refused it "
                f"permanently (SMTP {suppressed.code}: {suppressed.reason}); nothing is sent to it until the user "
                "sets another address or an operator lifts it (crownstream email suppressions lift)",
                code=suppressed.code,
                reason_code="address_suppressed",
            )
        rendered = render_email(request, self.settings.public_url, self.settings.unsubscribe_key)
        message = build_message(request, rendered, self.settings)
        try:
            await self.pool.send(message)
        except aiosmtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.code}: {exc.message}"
            if 500 <= exc.code < 600:  # permanent: retrying cannot help (rejected content, relay policy)
                return Outcome.dead(error, code=exc.code, digest=rendered.digest)
            return Outcome.failed(error, retry_in=0.0, code=exc.code, digest=rendered.digest)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients] or [550]
            reason = "; ".join(f"{r.code} {clean_text(r.message, 300)}" for r in exc.recipients) or "refused"
            if all(500 <= code < 600 for code in codes):
                # Permanent (unknown mailbox, no such domain): never again to this address.
                await suppress(self.ledger.engine, address, codes[0], reason)
                self._suppression.cache_invalidate(address.lower())
                return Outcome.dead(
                    f"recipient refused permanently, address suppressed: {reason}",
                    code=codes[0],
                    digest=rendered.digest,
                    reason_code="address_suppressed",
                )
            return Outcome.failed(f"recipient refused for now: {reason}", retry_in=0.0, code=codes[0])
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            return Outcome.failed(f"{type(exc).__name__}: {exc}", retry_in=0.0, digest=rendered.digest)
        return Outcome.sent(250, rendered.digest)


def sample_request(notification_type: str, digest: bool = False) -> DeliveryRequest:
    """Sample data for ``crownstream email preview``."""
    from crownstream.schemas.deliveries import dedup_key

    now = datetime(2026, 3, 14, 18, 30, tzinfo=UTC)
    items = (
        [
            DigestItem(
                notification_type="match.result",
                source_event_id=f"evt-{i}",
                occurred_at=now,
                title=f"Match {i}: Team <Alpha> 2 – 1 Team Beta",
                body="Round of 16 · best of 3",
                url=f"https://crownstream.example/matches/{i}",
            )
            for i in range(1, 4)
        ]
        if digest
        else []
    )
    return DeliveryRequest(
        dedup_key=dedup_key("preview", "user-1", "email", notification_type),
        channel="email",
        kind="digest" if digest else "single",
        notification_type=notification_type,
        user_id="user-1",
        source_event_id="preview",
        tournament_id="spring-cup",
        critical=notification_type.startswith(("payment", "payout")),
        created_at=now,
        title="Your daily digest" if digest else f"Preview of {notification_type}",
        body="Team <Alpha> won the final 3–2.\n\nPlacement: 1st · Points: 42",
        url="https://crownstream.example/t/spring-cup",
        data={"placement": 1, "points": 42, "team": "Team <Alpha>"},
        items=items,
        contact=Contact(email="player@example.com", display_name="Ada"),
    )
