"""Pure logic of the sinks: backoff, Standard Webhooks signing, target checks, Discord limits, email rendering."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from crownstream.schemas.deliveries import Contact, DigestItem
from crownstream.settings import Settings
from crownstream.sinks import discord_payload as dp
from crownstream.sinks.circuit import Circuits
from crownstream.sinks.email import build_message, render_email, sample_request
from crownstream.sinks.retry import RetryPolicy, retry_policy
from crownstream.sinks.signing import WebhookVerificationError, generate_secret, sign_headers, verify
from crownstream.sinks.targets import TargetRefused, check_address, parse_target
from tests.unit.sinks.factories import NOW, email_request

request = email_request


# --- retry schedules ----------------------------------------------------------------------------------------
def test_each_channel_retries_on_its_schedule_and_webhooks_for_more_than_a_day():
    settings = Settings()
    for channel in ("webhook", "discord"):
        policy = retry_policy(channel, settings)
        assert policy.delays == (5, 300, 1800, 7200, 18000, 36000, 36000) and policy.attempts == 8
        assert policy.horizon_s >= 24 * 3600
    assert retry_policy("email", settings).horizon_s >= 2 * 24 * 3600 - 3600
    assert retry_policy("in_app", settings).attempts == 8


def test_a_schedule_is_jittered_either_way_and_spent_after_its_last_delay():
    policy = RetryPolicy((10.0, 100.0), jitter=0.2)
    delays = {policy.delay_after(2, rand=random.Random(seed)) for seed in range(200)}
    assert min(delays) >= 80 and max(delays) <= 120 and len(delays) > 150  # spread: an outage's retries
    assert policy.delay_after(3) is None  # three attempts: the delivery goes to the dead-letter topic


def test_a_receivers_retry_after_is_honoured_up_to_the_cap():
    policy = RetryPolicy((5.0,), jitter=0.0)
    assert policy.delay_after(1, hinted_s=60.0) == 60.0
    assert policy.delay_after(1, hinted_s=float("inf"), hint_cap_s=300.0) == 300.0
    assert policy.delay_after(1, hinted_s=1.0) == 5.0  # never sooner than the schedule


def test_max_attempts_compresses_every_channel_to_exponential_backoff():
    settings = Settings(sink_max_attempts=4, sink_backoff_base_s=0.2, sink_backoff_max_s=0.5)
    policy = retry_policy("webhook", settings)
    assert policy.delays == (0.2, 0.4, 0.5) and policy.attempts == 4


def test_a_schedule_is_set_per_channel_from_the_environment(monkeypatch):
    monkeypatch.setenv("CROWNSTREAM_SINK_RETRY_SCHEDULE_S", '{"webhook": [1, 2]}')
    settings = Settings()
    assert retry_policy("webhook", settings).delays == (1, 2)
    assert retry_policy("email", settings).delays[0] == 60  # the others keep their defaults
    with pytest.raises(ValueError, match="unknown channel"):
        Settings(sink_retry_schedule_s={"fax": (1,)})
    with pytest.raises(ValueError, match="more than 0"):
        Settings(sink_retry_schedule_s={"email": (0,)})


# --- circuit breaker ------------------------------------------------------------------------------------------
def test_a_run_of_failures_opens_the_circuit_and_only_one_probe_goes_per_interval():
    circuits = Circuits(failures_to_open=3, open_s=10.0, open_max_s=40.0)
    assert not circuits.failed("ep", 0.0) and not circuits.failed("ep", 0.0)
    assert circuits.wait_s("ep", 0.0) == 0.0  # two failures: still closed
    assert circuits.failed("ep", 1.0)  # the third opens it
    assert circuits.wait_s("ep", 5.0) == pytest.approx(6.0) and circuits.open_targets(5.0) == ["ep"]
    assert circuits.wait_s("ep", 11.0) == 0.0  # the probe
    assert circuits.wait_s("ep", 11.0) > 0  # everything else waits for the probe's outcome
    assert circuits.failed("ep", 12.0)  # a failed probe: twice as long
    assert circuits.wait_s("ep", 31.0) == pytest.approx(1.0)
    assert circuits.wait_s("ep", 32.0) == 0.0
    circuits.failed("ep", 32.0)
    circuits.wait_s("ep", 80.0)
    circuits.failed("ep", 80.0)
    assert circuits.wait_s("ep", 80.0) == pytest.approx(40.0)  # capped
    assert circuits.wait_s("other", 80.0) == 0.0  # other destinations are not affected


def test_a_retry_after_holds_the_whole_destination_then_lets_one_probe_go():
    circuits = Circuits(failures_to_open=5, open_s=10.0, open_max_s=40.0)
    circuits.hold("ep", until=60.0)  # one failure, but the receiver asked for a minute
    assert circuits.wait_s("ep", 30.0) == pytest.approx(30.0) and circuits.open_targets(30.0) == ["ep"]
    assert circuits.wait_s("ep", 60.0) == 0.0 and circuits.wait_s("ep", 60.0) > 0  # one probe, the rest wait
    circuits.succeeded("ep")
    assert circuits.wait_s("ep", 61.0) == 0.0


def test_a_successful_probe_closes_the_circuit_and_an_unsent_one_lets_the_next_go():
    circuits = Circuits(failures_to_open=1, open_s=10.0, open_max_s=40.0)
    circuits.failed("ep", 0.0)
    assert circuits.wait_s("ep", 10.0) == 0.0
    circuits.forget("ep")  # the probe was handed back unsent
    assert circuits.wait_s("ep", 10.0) == 0.0
    circuits.succeeded("ep")
    assert circuits.wait_s("ep", 10.0) == 0.0 and circuits.open_targets(10.0) == []


# --- signing ----------------------------------------------------------------------------------------------
def test_signature_verifies_and_body_tampering_is_rejected():
    secret = generate_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"match.result","data":{}}'
    headers = sign_headers("k" * 64, body, [secret])
    assert headers["webhook-id"] == "k" * 64
    assert headers["webhook-signature"].startswith("v1,")
    assert verify(body, headers, secret) == {"type": "match.result", "data": {}}
    with pytest.raises(WebhookVerificationError):
        verify(body.replace(b"result", b"resulT"), headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify(body, {**headers, "webhook-id": "other"}, secret)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, generate_secret())


def test_signature_matches_the_spec_formula():
    import base64
    import hashlib
    import hmac

    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    headers = sign_headers("msg_1", b"{}", [secret], now=NOW)
    expected = base64.b64encode(
        hmac.new(
            b"0123456789abcdef0123456789abcdef", f"msg_1.{int(NOW.timestamp())}.{{}}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": f"v1,{expected}",
    }


def test_rotation_signs_with_every_secret_and_either_verifies():
    old, new = generate_secret(), generate_secret()
    headers = sign_headers("id", b"{}", [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(b"{}", headers, old)
    verify(b"{}", headers, new)


@pytest.mark.parametrize("skew", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_timestamps_outside_five_minutes_are_rejected(skew):
    secret = generate_secret()
    headers = sign_headers("id", b"{}", [secret], now=datetime.now(UTC) + skew)
    with pytest.raises(WebhookVerificationError, match=r"too (old|new)"):
        verify(b"{}", headers, secret)


def test_timestamps_within_tolerance_pass():
    secret = generate_secret()
    verify(b"{}", sign_headers("id", b"{}", [secret], now=datetime.now(UTC) - timedelta(minutes=4)), secret)


# --- targets ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.9",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "172.16.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "fd00::1",
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(address):
    with pytest.raises(TargetRefused):
        check_address(address, allow_private=False)
    check_address(address, allow_private=True)


def test_public_address_is_allowed():
    check_address("93.184.215.14", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http://example.com/hook",
        "https://user:pw@example.com/",
        "https:///nohost",
        "https://127.0.0.1/",
        "http://127.0.0.1/",
    ],
)
def test_bad_urls_are_refused(url):
    with pytest.raises(TargetRefused):
        parse_target(url, allow_private=False)


# --- Discord limits ---------------------------------------------------------------------------------------
def test_truncation_is_clean():
    text = "word " * 100
    cut = dp.truncate(text, 50)
    assert len(cut) <= 50 and cut.endswith("…") and not cut[:-1].endswith(" ")


def _check_limits(payload):
    from crownstream.devpeers.discord import limit_violations

    assert limit_violations(payload) == []


long_text = st.text(min_size=0, max_size=6000)


@hsettings(max_examples=60, deadline=None)
@given(
    title=st.text(min_size=1, max_size=600),
    body=st.text(max_size=5000),
    data=st.dictionaries(st.text(min_size=1, max_size=300), st.text(max_size=1500), max_size=40),
    n_items=st.integers(0, 15),
)
def test_any_request_fits_discords_limits(title, body, data, n_items):
    title = title.strip() or "t"
    req = request(
        channel="discord",
        title=title[:256],
        body=body[:4000],
        data=data,
        kind="digest" if n_items else "single",
        items=[
            DigestItem(
                notification_type="match.result",
                source_event_id=f"e{i}",
                occurred_at=NOW,
                title=("item " * 80)[:250],
                body="x" * 900,
            )
            for i in range(n_items)
        ],
    )
    payload = dp.build_payload(req)
    _check_limits(payload)
    assert payload["embeds"][0]["title"]


def test_fit_trims_an_oversized_payload():
    payload = {
        "content": "c" * 3000,
        "embeds": [
            {
                "title": "t" * 300,
                "description": "d" * 5000,
                "fields": [{"name": "n" * 300, "value": "v" * 2000} for _ in range(30)],
            }
        ]
        * 12,
    }
    fitted = dp.fit(payload)
    _check_limits(fitted)
    assert len(fitted["embeds"]) <= 10 and len(fitted["content"]) == 2000


# --- email ------------------------------------------------------------------------------------------------
def test_email_escapes_html_but_not_text():
    req = request(title="<script>alert(1)</script>", body="Team <Alpha> & co")
    rendered = render_email(req, "https://crownstream.example", "test-secret")
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "Team &lt;Alpha&gt; &amp; co" in rendered.html
    assert "Team <Alpha> & co" in rendered.text


def on_the_wire(outgoing) -> EmailMessage:
    """What a receiving server reads from DATA."""
    assert b"\r\n" in outgoing.data and b"\n" not in outgoing.data.replace(b"\r\n", b"")
    return message_from_bytes(outgoing.data, policy=policy.default)


def test_message_headers_non_critical_has_one_click_unsubscribe():
    s = Settings(email_message_id_domain="mail.test")
    req = request()
    msg = on_the_wire(build_message(req, render_email(req, "https://crownstream.example", "test-secret"), s))
    assert msg["Message-ID"] == f"<{req.dedup_key}@mail.test>"
    assert msg["List-Unsubscribe"].startswith("<https://crownstream.example/users/u1/unsubscribe?")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_critical_mail_has_no_unsubscribe():
    req = request(critical=True, notification_type="payment.verified")
    msg = on_the_wire(build_message(req, render_email(req, "https://x", "test-secret"), Settings()))
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert "regardless of your notification settings" in msg.get_body(("plain",)).get_content()


def test_non_ascii_subject_names_and_bodies_survive_the_wire():
    req = request(title="Équipe Ω won 3–2 " * 8, body="Zoë scored ✓").model_copy(
        update={"contact": Contact(email="zoe@example.com", display_name="Zoë")}
    )
    settings = Settings(email_from="Crownstream Ligue ✓ <notify@crownstream.example>")
    outgoing = build_message(req, render_email(req, "https://x", "test-secret"), settings)
    assert outgoing.data.isascii() and not outgoing.smtputf8  # 7-bit headers, encoded words, encoded bodies
    assert (outgoing.sender, outgoing.recipient) == ("notify@crownstream.example", "zoe@example.com")
    msg = on_the_wire(outgoing)
    assert msg["Subject"] == "Équipe Ω won 3–2 " * 8
    assert max(len(line) for line in outgoing.data.split(b"\r\n")) <= 998
    assert msg["From"].addresses[0].display_name == "Crownstream Ligue ✓"
    assert msg["To"].addresses[0].addr_spec == "zoe@example.com"
    assert "Zoë scored ✓" in msg.get_body(("plain",)).get_content()
    assert "Zoë scored ✓" in msg.get_body(("html",)).get_content()


def test_an_internationalised_address_is_sent_with_smtputf8():
    req = request().model_copy(update={"contact": Contact(email="jürgen@bücher.example")})
    outgoing = build_message(req, render_email(req, "https://x", "test-secret"), Settings())
    assert outgoing.smtputf8 and outgoing.recipient == "jürgen@bücher.example"
    # The standard library's bytes parser reads 8-bit headers as escaped bytes; a UTF-8 server decodes them.
    msg = message_from_string(outgoing.data.decode("utf-8"), policy=policy.SMTPUTF8)
    assert msg["To"].addresses[0].addr_spec == "jürgen@bücher.example"
    assert msg["Message-ID"] == f"<{req.dedup_key}@{Settings().email_message_id_domain}>"


def test_digest_renders_every_item():
    req = sample_request("digest.daily", digest=True)
    rendered = render_email(req, "https://x", "test-secret")
    for item in req.items:
        assert item.title in rendered.text
        assert item.title.replace("<", "&lt;").replace(">", "&gt;") in rendered.html


def test_same_request_same_digest():
    req = request()
    assert render_email(req, "https://x", "test-secret").digest == render_email(req, "https://x", "test-secret").digest


async def test_pinned_resolver_refuses_names_that_resolve_to_loopback():
    from crownstream.sinks.outbound import pinned_resolver
    from crownstream.sinks.targets import parse_target

    with pytest.raises(TargetRefused):
        await pinned_resolver(allow_private=False).resolve("localhost", 80)
    with pytest.raises(TargetRefused):
        await pinned_resolver(allow_private=False).resolve("0x7f.1", 80)  # what getaddrinfo reads as 127.0.0.1
    assert (await pinned_resolver(allow_private=True).resolve("localhost", 80))[0]["host"] in ("127.0.0.1", "::1")
    with pytest.raises(TargetRefused):
        parse_target("https://10.0.0.1/hook", allow_private=False)
    parse_target("https://hooks.example.com/x", allow_private=False)  # names are checked when resolved


# --- permanent vs transient, what owners read, what is stored ---------------------------------------------
class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


class _Wrapped(Exception):  # what SQLAlchemy raises: the driver's error as .orig
    def __init__(self, orig: BaseException) -> None:
        super().__init__(str(orig))
        self.orig = orig


@pytest.mark.parametrize("sqlstate", ["22021", "22P05", "22003", "22000", "23505", "23502", "54000", "42703"])
def test_data_and_constraint_errors_are_permanent(sqlstate):
    from crownstream.sinks.ledger import is_transient

    assert not is_transient(_Wrapped(_PgError(sqlstate)))


@pytest.mark.parametrize(
    "exc",
    [
        _Wrapped(_PgError("40001")),
        _Wrapped(_PgError("40P01")),
        _PgError("57P01"),
        _PgError("08006"),
        _PgError("53300"),
        ConnectionRefusedError(),
        TimeoutError(),
        OSError("network unreachable"),
    ],
)
def test_connection_loss_timeouts_and_serialization_failures_are_transient(exc):
    from crownstream.sinks.ledger import is_transient

    assert is_transient(exc)


def test_bugs_and_unencodable_values_are_permanent():
    from crownstream.sinks.ledger import is_transient

    assert not is_transient(TypeError("a bug"))
    assert not is_transient(_Wrapped(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")))


def test_stored_texts_lose_nul_and_control_characters_and_are_capped():
    from crownstream.sinks.ledger import Outcome, clean_text

    assert clean_text("a\x00b\x01c\x1b[31md\x7fe\u0085f\ud800g\nh\ti") == "abc[31mdefg\nh\ti"
    assert clean_text(b"bytes \xff\x00 too") == "bytes \ufffd too"
    assert len(clean_text("x" * 10_000)) == 2000 and clean_text(None) is None
    assert Outcome.failed("HTTP 500: \x00boom", retry_in=1).error == "HTTP 500: boom"
    assert Outcome.dead("\x00" * 5000).error == ""


@pytest.mark.parametrize(
    "exc,category",
    [
        ("refused", "target refused by policy"),
        (TimeoutError(), "timed out"),
        (ConnectionRefusedError(), "connection refused"),
        ("ssl", "TLS error"),
        (OSError("No route to host 10.9.8.7"), "connection failed"),
    ],
)
def test_owners_read_failure_categories_without_addresses(exc, category):
    import ssl

    from crownstream.sinks.outbound import failure_category

    if exc == "refused":
        exc = TargetRefused("10.0.0.1 is a non-public address (private)")
    elif exc == "ssl":
        exc = OSError("connecting to 10.9.8.7:443")
        exc.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    assert failure_category(exc) == category
    assert "10." not in failure_category(exc)


async def test_capped_reads_stop_at_the_cap():
    import httpx

    from crownstream.sinks.outbound import read_capped_httpx

    sent = []

    async def endless():
        for _ in range(1000):  # 10 MB if read whole
            sent.append(1)
            yield b"x" * 10_000

    body, cut = await read_capped_httpx(httpx.Response(500, content=endless()), 25_000)
    assert len(body) == 25_000 and cut and len(sent) == 3

    async def short():
        yield b"short"

    body, cut = await read_capped_httpx(httpx.Response(500, content=short()), 1000)
    assert body == b"short" and not cut


def test_discord_retry_after_from_body_or_headers_parsed_safely():
    import httpx

    from crownstream.sinks.discord import Bucket, retry_after_s

    assert retry_after_s(b'{"retry_after": 1.5}', httpx.Headers()) == 1.5
    assert retry_after_s(b'{"retry_after": 1e999}', httpx.Headers()) == float("inf")
    assert retry_after_s(b'{"retry_after": "NaN"}', httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_s(b"not json", httpx.Headers({"x-ratelimit-reset-after": "-2"})) == 0.0
    assert retry_after_s(b"", httpx.Headers({"retry-after": "soon"})) is None
    bucket = Bucket()
    bucket.update(httpx.Headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset-after": "1e999"}), cap_s=300.0)
    assert 299.0 < bucket.wait_s() <= 300.0
    bucket.update(
        httpx.Headers({"x-ratelimit-remaining": "99999999999999999999", "x-ratelimit-reset-after": "nan"}), 300.0
    )
    assert bucket.remaining == 0  # unreadable values leave the bucket as it was


def test_a_destination_is_proven_by_a_success_and_unproven_by_a_failure():
    """Until proven, the dispatcher sends a destination no more than the failures that open its circuit at a time
    (Dispatcher._cap): a dead endpoint's first wave is that, not the whole per-destination concurrency."""
    circuits = Circuits(failures_to_open=5, open_s=10.0, open_max_s=40.0)
    assert not circuits.proven("hook")  # never answered yet
    circuits.succeeded("hook")
    assert circuits.proven("hook")
    circuits.failed("hook", now=0.0)
    assert not circuits.proven("hook")  # one failure: cautious again until the next success
    circuits.succeeded("hook")
    assert circuits.proven("hook") and not circuits.proven("other")
