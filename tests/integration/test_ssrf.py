"""SSRF through the sinks, against real loopback receivers that count every request they get: webhook
endpoints and Discord URLs written with the forms that used to slip through (ideographic and fullwidth full
stops, circled digits, numeric and shorthand IPv4, IPv4-mapped IPv6, NAT64…) are refused at registration
(the real PostgreSQL) and at delivery (a real worker with private targets not allowed, the real broker), and
the clients themselves refuse to connect to an unchecked address even when the pre-check is skipped."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
from sqlalchemy import text

from crownstream.devpeers import DiscordStandIn, WebhookReceiver
from crownstream.schemas.deliveries import Contact
from crownstream.settings import Settings
from crownstream.sinks.ledger import Ledger
from crownstream.sinks.targets import TargetRefused
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.web.auth import mint_user_token
from tests.support.sinks import (
    eventually,
    make_request,
    produce,
    read_delivery_dead_letters,
    sink_worker_overrides,
)

USER_KEY = "user-token-key-" + "k" * 40

# Hosts that all mean 127.0.0.1 (or ::1) to yarl, httpx or getaddrinfo; {port} is the receiver's.
LOOPBACK_HOSTS = [
    "127.0.0.1",
    "127\u30020\u30020\u30021",
    "127\uff0e0\uff0e0\uff0e1",
    "127\uff610\uff610\uff611",
    "\u2460\u2461\u2466.0.0.1",
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",
    "\u246b\u2466.1",
    "0x7f.1",
    "0x7f000001",
    "0177.0.0.1",
    "2130706433",
    "017700000001",
    "127.1",
    "127.0.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::1]",
    "[::1]",
    "localhost",
    "LocalHost",
]


def test_the_integration_forms_are_many():
    assert len(LOOPBACK_HOSTS) >= 20


async def test_registration_refuses_every_form(engine):
    refused = []
    with WebhookReceiver() as receiver:
        for i, host in enumerate(LOOPBACK_HOSTS):
            url = f"http://{host}:{receiver.port}/hooks/u{i}"
            with pytest.raises(TargetRefused) as exc:
                await create_endpoint(engine, f"u{i}", url, allow_private=False)
            # Refused for what the host is, not merely for plain http.
            assert "loopback" in exc.value.reason or "does not resolve to public addresses" in exc.value.reason, (
                host,
                exc.value.reason,
            )
            refused.append(host)
        # The https spelling is refused the same way.
        for host in LOOPBACK_HOSTS:
            with pytest.raises(TargetRefused):
                await create_endpoint(engine, "x", f"https://{host}:{receiver.port}/hooks/x", allow_private=False)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM webhook_endpoints"))).scalar_one() == 0
        assert receiver.requests_seen == 0
    assert refused == LOOPBACK_HOSTS
    # With private targets allowed (tests, the demo) the same URLs register.
    endpoint, _ = await create_endpoint(
        engine, "ok", f"http://127\u30020\u30020\u30021:{receiver.port}/hooks/ok", allow_private=True
    )
    assert endpoint.url.endswith("/hooks/ok")


async def test_delivery_refuses_every_form_on_a_worker(settings, topics, start_worker, database_url, engine):
    """Endpoints registered while private targets were allowed (or whose URL changed since): a worker that
    does not allow them dead-letters each delivery as target_refused, and the receivers get no request."""
    with WebhookReceiver() as receiver, DiscordStandIn() as discord:
        webhooks, discords = [], []
        for i, host in enumerate(LOOPBACK_HOSTS):
            user = f"w{i}"
            endpoint, secret = await create_endpoint(engine, user, "http://placeholder", allow_private=True)
            receiver.add(user, secret)
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"),
                    {"u": f"http://{host}:{receiver.port}/hooks/{user}", "i": endpoint.id},
                )
            webhooks.append(make_request(i, "webhook", user))
            hook_url = discord.webhook_url(f"d{i}").replace("127.0.0.1", host)
            discords.append(make_request(i, "discord", f"d{i}", contact=Contact(discord_webhook_url=hook_url)))
        worker = start_worker(
            **sink_worker_overrides(
                database_url, sink_allow_private_targets=False, dev_mode=True, user_token_key=USER_KEY
            )
        )
        await produce(settings, webhooks + discords)
        total = len(webhooks) + len(discords)

        # Registration over the worker's HTTP API, each form by its would-be owner: 400 with the reason.
        answers = []
        async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
            for scheme in ("http", "https"):
                for i, host in enumerate(LOOPBACK_HOSTS):
                    token = mint_user_token(f"r{i}", 600, Settings(user_token_key=USER_KEY))
                    response = await client.post(
                        f"/users/r{i}/webhooks",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"url": f"{scheme}://{host}:{receiver.port}/hooks/r{i}"},
                    )
                    answers.append((host, response.status_code, response.json().get("error", "")))
            # A Discord webhook URL reaches the worker in the user's preferences: the same policy refuses it there.
            for i, host in enumerate(LOOPBACK_HOSTS):
                token = mint_user_token(f"p{i}", 600, Settings(user_token_key=USER_KEY))
                prefs = {"contact": {"discord_webhook_url": discord.webhook_url(f"p{i}").replace("127.0.0.1", host)}}
                response = await client.put(
                    f"/users/p{i}/preferences", headers={"Authorization": f"Bearer {token}"}, json=prefs
                )
                answers.append((host, response.status_code, response.json().get("error", "")))
        assert len(answers) == 3 * len(LOOPBACK_HOSTS)
        assert all(code == 400 for _, code, _ in answers), [a for a in answers if a[1] != 400]
        webhook_answers, discord_answers = answers[: -len(LOOPBACK_HOSTS)], answers[-len(LOOPBACK_HOSTS) :]
        assert all(
            "loopback" in error or "does not resolve to public addresses" in error for _, _, error in webhook_answers
        )
        # httpx cannot even parse some spellings (circled digits): refused as unreadable, which is as good.
        assert all(
            error.startswith("contact.discord_webhook_url is refused: ")
            and ("loopback" in error or "does not resolve to public" in error or "cannot be read" in error)
            for _, _, error in discord_answers
        ), discord_answers
        async with engine.connect() as conn:
            registered = (
                await conn.execute(text("SELECT count(*) FROM webhook_endpoints WHERE user_id LIKE 'r%'"))
            ).scalar_one()
        assert registered == 0

        async def all_dead():
            letters = await read_delivery_dead_letters(settings)
            return letters if len(letters) >= total else None

        letters = await eventually(all_dead, timeout=90, what="every delivery refused into the DLQ")
        assert len(letters) == total
        assert {h["dlq.error.code"] for h, _ in letters} == {"target_refused"}
        by_channel = {}
        for headers, _ in letters:
            by_channel[headers["dlq.delivery.channel"]] = by_channel.get(headers["dlq.delivery.channel"], 0) + 1
            assert headers["dlq.delivery.attempts"] == "1"  # permanent: never retried
        assert by_channel == {"webhook": len(webhooks), "discord": len(discords)}
        assert receiver.requests_seen == 0 and discord.requests_seen == 0
        assert await Ledger(engine).states() == {"dead": total}
        # What the owners read: a category, no address.
        async with engine.connect() as conn:
            reasons = (
                await conn.execute(text("SELECT disabled_reason, failing_since IS NOT NULL FROM webhook_endpoints"))
            ).all()
        assert all(not r[0] or r[0] == "target refused by policy" for r in reasons) and all(r[1] for r in reasons)


async def test_the_clients_refuse_unchecked_addresses_even_without_the_pre_check(database_url, engine):
    """The pre-check (parse_target) skipped, as a rebinding DNS answer would skip it: aiohttp's resolver and
    httpx's network backend still resolve through the policy and connect to nothing refused."""
    from crownstream.sinks.discord import DiscordSink
    from crownstream.sinks.webhooks import WebhookSink

    settings = Settings(database_url=database_url, sink_allow_private_targets=False)
    with WebhookReceiver() as receiver, DiscordStandIn() as discord:
        hook = WebhookSink(settings, Ledger(engine))
        sink = DiscordSink(settings, Ledger(engine))
        await hook.start()
        await sink.start()
        tried = 0
        try:
            # Names and numbers aiohttp hands to its resolver (127.1: aiohttp itself refuses it as non-canonical).
            for host in ("localhost", "0x7f.1", "127.1"):
                with pytest.raises((TargetRefused, aiohttp.InvalidUrlClientError)):
                    async with hook._client.post(f"http://{host}:{receiver.port}/hooks/x", data=b"{}"):
                        pass
                tried += 1
            for host in (
                "localhost",
                "127.0.0.1",
                "[::ffff:127.0.0.1]",
                "2130706433",
                "0x7f.1",
                "127.1",
                "127\u30020\u30020\u30021",
                "[64:ff9b::7f00:1]",
            ):
                with pytest.raises(TargetRefused):
                    await sink._post(discord.webhook_url("g").replace("127.0.0.1", host), b"{}")
                tried += 1
        finally:
            await hook.stop()
            await sink.stop()
        assert tried == 11
        assert receiver.requests_seen == 0 and discord.requests_seen == 0


@pytest.fixture(scope="module")
def localhost_cert(tmp_path_factory):
    """A self-signed certificate for the name ``localhost`` only (no IP address in it)."""
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return folder / "cert.pem", folder / "key.pem"


async def test_tls_is_verified_against_the_url_host_while_connecting_to_the_checked_address(localhost_cert):
    """Both clients connect to the address the policy resolved (127.0.0.1 for localhost), yet the TLS server
    name and the certificate check are the URL's host: https://localhost verifies, https://127.0.0.1 (same
    server, a certificate without that address) does not."""
    import ssl

    import httpx
    from aiohttp import web

    from crownstream.processes import free_port
    from crownstream.sinks.outbound import guarded_transport, pinned_resolver

    cert, key = localhost_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    seen_sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen_sni.append(name)

    async def answer(request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ctx).start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    try:
        async with httpx.AsyncClient(transport=guarded_transport(True, client_ctx), trust_env=False) as client:
            assert (await client.post(f"https://localhost:{port}/")).text == "ok"
            with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
                await client.post(f"https://127.0.0.1:{port}/")
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=pinned_resolver(True), ssl=client_ctx), trust_env=False
        ) as session:
            async with session.post(f"https://localhost:{port}/") as response:
                assert await response.text() == "ok"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with session.post(f"https://127.0.0.1:{port}/"):
                    pass
    finally:
        await runner.cleanup()
    assert seen_sni.count("localhost") == 2
