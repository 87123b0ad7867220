"""The demo's delivery channels, all on loopback: an SMTP server, a signature-verifying webhook receiver and a
Discord stand-in (``crownstream.devpeers``, in threads of the demo process), a fresh PostgreSQL database for the
ledger and feed (created on the configured server, migrated, dropped at the end unless ``--keep-database``),
webhook endpoints and notification preferences for the tournament's players, and the reconciliation of what the
pipeline requested with what the receivers got.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from crownstream.demo import reconcile
from crownstream.demo.hooks import Channels
from crownstream.devpeers import DiscordStandIn, SmtpPeer, WebhookReceiver
from crownstream.ops import group_lag
from crownstream.settings import Settings
from crownstream.streams.topics import DELIVERIES

TEAMS, MEMBERS = 16, 4  # crownstream/demo/tournament.py registers user-TT-M for these
WEBHOOK_USERS = ("user-01-1", "user-02-1", "user-03-1")  # each with a signed webhook endpoint
DISCORD_USERS = ("user-01-1", "user-01-2", "user-01-3", "user-01-4", "user-02-1")
DIGEST_USER = "user-04-1"  # match results folded into a daily digest instead of one email each
DIGEST = {"enabled": True, "time": "08:00:00", "types": ["match.result"]}
DIGEST_TIMEZONE = "Europe/Berlin"


def demo_users() -> list[str]:
    return [f"user-{team:02d}-{m}" for team in range(1, TEAMS + 1) for m in range(1, MEMBERS + 1)]


def preferences(user: str, discord_url: str | None) -> dict[str, Any]:
    prefs: dict[str, Any] = {"contact": {"email": f"{user}@players.example", "display_name": user}}
    result_channels = ["in_app", "email"]
    if discord_url:
        prefs["contact"]["discord_webhook_url"] = discord_url
        result_channels.append("discord")
    if user in WEBHOOK_USERS:
        result_channels.append("webhook")
        prefs["types"] = {"ranking.changed": ["in_app", "webhook"]}
    if len(result_channels) > 2:
        prefs.setdefault("types", {})["match.result"] = result_channels
    if user == DIGEST_USER:
        prefs["digest"], prefs["timezone"] = DIGEST, DIGEST_TIMEZONE
    return prefs


def database_name(settings: Settings) -> str:
    return settings.app_id.replace("-", "_")


class LocalChannels(Channels):
    name = "loopback"

    def __init__(self, keep_database: bool = False) -> None:
        self.keep_database = keep_database
        self.smtp: SmtpPeer | None = None
        self.webhooks: WebhookReceiver | None = None
        self.discord: DiscordStandIn | None = None
        self.database_url: str | None = None
        self._admin_url: str | None = None
        self._db_name: str | None = None
        # Fresh random secrets per run: the demo's workers start as production ones do, not in development mode.
        self.staff_token = secrets.token_urlsafe(32)
        self.user_token_key = secrets.token_urlsafe(32)
        self.unsubscribe_secret = secrets.token_urlsafe(32)

    # --- start: peers, database, endpoints ------------------------------------------------------------------
    def start(self, settings: Settings) -> dict[str, str]:
        from crownstream.sinks import db

        self.smtp = SmtpPeer().start()
        self.webhooks = WebhookReceiver().start()
        self.discord = DiscordStandIn().start()  # Discord's own per-webhook limit: 5 per 2 s
        url = make_url(settings.database_url)
        self._db_name = database_name(settings)
        self._admin_url = url.set(database="postgres").render_as_string(hide_password=False)
        asyncio.run(self._admin(f'CREATE DATABASE "{self._db_name}"'))
        self.database_url = url.set(database=self._db_name).render_as_string(hide_password=False)
        db.upgrade(self.database_url)
        asyncio.run(self._register_endpoints())
        return {
            "CROWNSTREAM_DATABASE_URL": self.database_url,
            "CROWNSTREAM_SMTP_HOST": self.smtp.host,
            "CROWNSTREAM_SMTP_PORT": str(self.smtp.port),
            # The peers listen on 127.0.0.1, which the sinks refuse unless told otherwise.
            "CROWNSTREAM_SINK_ALLOW_PRIVATE_TARGETS": "true",
            "CROWNSTREAM_SINK_POLL_INTERVAL_S": "0.2",
            "CROWNSTREAM_STAFF_TOKEN": self.staff_token,
            "CROWNSTREAM_USER_TOKEN_KEY": self.user_token_key,
            "CROWNSTREAM_UNSUBSCRIBE_SECRET": self.unsubscribe_secret,
        }

    def describe(self) -> str:
        return (
            f"channels on loopback: SMTP {self.smtp.host}:{self.smtp.port}, webhooks {self.webhooks.base_url}, "
            f"Discord stand-in {self.discord.base_url}; ledger database {self._db_name!r}"
        )

    async def _admin(self, statement: str) -> None:
        engine = create_async_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    async def _register_endpoints(self) -> None:
        from crownstream.sinks import db
        from crownstream.sinks.signing import generate_secret
        from crownstream.sinks.webhook_endpoints import create_endpoint

        engine = db.create_engine(Settings(database_url=self.database_url))
        try:
            for user in WEBHOOK_USERS:
                secret = generate_secret()
                await create_endpoint(engine, user, self.webhooks.add(user, secret), secret=secret, allow_private=True)
        finally:
            await engine.dispose()

    # --- prepare: preferences ------------------------------------------------------------------------------
    def prepare(self, settings: Settings) -> list[dict[str, Any]]:
        return [
            {
                "type": "preferences.updated",
                "event_id": f"demo-prefs-{user}",
                "schema_version": 1,
                "occurred_at": "2026-11-24T17:00:00+00:00",
                "user_id": user,
                "preferences": preferences(user, self.discord.webhook_url(user) if user in DISCORD_USERS else None),
            }
            for user in demo_users()
        ]

    def wait_prepared(self, worker_urls: list[str], timeout: float) -> bool:
        """Until every player's preferences are in the workers' table, so the first notices already use them."""
        pending = set(demo_users())
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {self.staff_token}"}) as client:
            while pending and time.monotonic() < deadline:
                for user in sorted(pending):
                    for url in worker_urls:
                        try:
                            r = client.get(f"{url}/users/{user}/preferences")
                        except httpx.HTTPError:
                            continue
                        if r.status_code == 200 and r.json().get("defaults") is False:
                            pending.discard(user)
                            break
                if pending:
                    time.sleep(0.3)
        return not pending

    # --- counts while streaming ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        if not (self.smtp and self.webhooks and self.discord):
            return {}
        return {
            "email": self.smtp.count(),
            "discord": self.discord.count(),
            "webhook": len(self.webhooks.successes_by_id()),
        }

    # --- the end: requested vs received --------------------------------------------------------------------
    async def requested(self, settings: Settings) -> dict[str, list[dict[str, Any]]]:
        """Every committed delivery request, per channel, as of now."""
        from crownstream.streams.reading import read_topics

        out: dict[str, list[dict[str, Any]]] = {}
        for channel, spec in DELIVERIES.items():
            out[channel] = [orjson.loads(record.value) async for record in read_topics([spec], settings=settings)]
        return out

    async def _feed_keys(self) -> Counter:
        from crownstream.sinks.tables import feed_items

        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                return Counter((await conn.execute(select(feed_items.c.dedup_key))).scalars().all())
        finally:
            await engine.dispose()

    async def _pending_rows(self) -> int:
        from crownstream.sinks.tables import deliveries

        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                return (
                    await conn.execute(select(func.count()).select_from(deliveries).where(deliveries.c.state != "sent"))
                ).scalar_one()
        finally:
            await engine.dispose()

    def _received(self) -> dict[str, Counter]:
        emails = Counter()
        with self.smtp.lock:
            for message_id, n in self.smtp.by_message_id.items():
                emails[reconcile.message_id_key(message_id)] += n
        discord = Counter()
        with self.discord.lock:
            for hook, payloads in self.discord.messages.items():
                discord.update(reconcile.discord_message_identity(hook, p) for p in payloads)
        return {"email": emails, "discord": discord, "webhook": self.webhooks.successes_by_id()}

    async def reconcile(
        self, settings: Settings, timeout: float, settle: float = 4.0, on_progress=None
    ) -> reconcile.Reconciliation:
        """Wait until the requests stop changing for ``settle`` seconds and the receivers have all of them (or
        ``timeout``), then compare: per channel, requested vs received, missing, duplicates, unexpected.
        ``on_progress(result)`` sees each intermediate comparison (the deliveries still arriving)."""
        deadline = time.monotonic() + timeout
        last_total, stable_since = -1, time.monotonic()
        while True:
            requested = await self.requested(settings)
            received = self._received()
            received["in_app"] = await self._feed_keys()
            result = self._compare(requested, received)
            if on_progress:
                on_progress(result)
            total = sum(len(v) for v in requested.values())
            if total != last_total:
                last_total, stable_since = total, time.monotonic()
            settled = time.monotonic() - stable_since >= settle
            # "No new request for a few seconds" is not "fan-out finished": a notice crosses up to three topics,
            # each hop waiting for a transaction commit. Done = the group has nothing left to process, too.
            if settled and result.matches and not await self._pending_rows() and await _group_idle(settings):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        # Receivers keep listening a moment longer: a late re-send would show as a duplicate now.
        await asyncio.sleep(1)
        received = self._received()
        received["in_app"] = await self._feed_keys()
        return self._compare(await self.requested(settings), received)

    def _compare(
        self, requested: dict[str, list[dict[str, Any]]], received: dict[str, Counter]
    ) -> reconcile.Reconciliation:
        result = reconcile.Reconciliation()
        for channel in reconcile.CHANNEL_ORDER:
            asked = requested.get(channel, [])
            ids = (
                [reconcile.discord_request_identity(r) for r in asked]
                if channel == "discord"
                else [r["dedup_key"] for r in asked]
            )
            result.checks.append(reconcile.check(channel, ids, received.get(channel, Counter())))
        result.feed_items = sum(received.get("in_app", Counter()).values())
        emails = self.smtp.messages  # parsed under the peer's own lock
        if emails:
            result.samples["email subject"] = str(emails[0]["Subject"])
        with self.discord.lock:
            first = next((p for msgs in self.discord.messages.values() for p in msgs), None)
        if first:
            result.samples["Discord title"] = first["embeds"][0]["title"]
        webhook_ids = self.webhooks.successes_by_id()
        if webhook_ids:
            result.samples["webhook id"] = next(iter(webhook_ids))
        digested = sum(
            1
            for r in requested.get("email", [])
            if r["user_id"] == DIGEST_USER and r["notification_type"] == "match.result"
        )
        result.notes.append(
            f"{DIGEST_USER} gets match results in a daily digest at {DIGEST['time'][:5]} "
            f"{DIGEST_TIMEZONE}: {digested} match-result emails sent to them now"
        )
        return result

    # --- stop ----------------------------------------------------------------------------------------------
    def stop(self) -> str | None:
        """Stop the peers; drop the demo's database unless asked to keep it. Returns what was done with it."""
        for peer in (self.smtp, self.webhooks, self.discord):
            if peer is not None:
                try:
                    peer.stop()
                except Exception:  # a peer that never finished starting: nothing to stop
                    pass
        if self._db_name is None or self._admin_url is None:
            return None
        if self.keep_database:
            return f"kept database {self._db_name!r}: {self.database_url}"
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self._db_name}" WITH (FORCE)'))
        return f"dropped database {self._db_name!r}"


async def _group_idle(settings: Settings) -> bool:
    """The workers' group has committed everything on every topic it reads (inputs and internal hops)."""
    return sum(row.lag for row in await group_lag(settings)) == 0
