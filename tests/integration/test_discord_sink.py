"""The Discord sink against the Discord stand-in (its documented limits) and a real PostgreSQL (no broker): a
deleted webhook (404 Unknown Webhook) is never called again and its owner is told once, in-app; Discord's global
limit stops every webhook of the worker, not only the bucket that heard it."""

from __future__ import annotations

import asyncio

from crownstream.devpeers import DiscordStandIn
from crownstream.schemas.deliveries import Contact
from crownstream.settings import Settings
from crownstream.sinks.discord import DiscordSink
from crownstream.sinks.feed import FeedSink, list_feed
from crownstream.sinks.ledger import Ledger
from tests.support.sinks import SinkRun, eventually, make_request


def settings_for(database_url: str, **overrides) -> Settings:
    return Settings(
        **{
            "database_url": database_url,
            "sink_allow_private_targets": True,
            "sink_max_attempts": 20,
            "sink_backoff_base_s": 0.05,
            "sink_backoff_max_s": 0.2,
            "sink_poll_interval_s": 0.1,
            **overrides,
        }
    )


def Run(settings: Settings, engine, notify_gone=None) -> SinkRun:
    return SinkRun(DiscordSink(settings, Ledger(engine), notify_gone=notify_gone), settings)


def to(i: int, user: str, url: str):
    return make_request(i, "discord", user, contact=Contact(discord_webhook_url=url))


async def test_a_deleted_webhook_is_not_called_again_and_its_owner_is_told_once(engine, database_url, monkeypatch):
    from crownstream.agents.deliveries import _notify_discord_gone, runtime

    told = []
    monkeypatch.setattr(runtime, "sinks", {"in_app": FeedSink(Settings(), Ledger(engine))})

    async def notify(user_id, url_sha256, reason):
        told.append(user_id)
        await _notify_discord_gone(user_id, url_sha256, reason)

    with DiscordStandIn(limit=50, per_s=1.0) as discord:
        url = discord.webhook_url("ada")
        discord.delete("ada")
        async with Run(settings_for(database_url), engine, notify) as run:
            await run.sink.accept([to(1, "ada", url)])
            await run.sink.flush()
            await eventually(lambda: run.dead, timeout=20, what="the delivery to a deleted webhook")
            assert run.dead[0][1].reason_code == "webhook_gone" and "Unknown Webhook" in run.dead[0][1].error
            await run.sink.accept([to(i, "ada", url) for i in range(2, 6)])
            await run.sink.flush()
            await eventually(lambda: len(run.dead) == 5, timeout=20, what="the later ones")
        assert discord.unknown_webhook_answers["ada"] == 1  # the later four never reached Discord
        assert all(outcome.reason_code == "webhook_gone" for _, outcome in run.dead)
        assert told == ["ada"]
        page = await list_feed(engine, "ada")
        assert [i["notification_type"] for i in page["items"]] == ["discord.webhook_gone"]


async def test_discords_global_limit_stops_every_webhook_of_the_worker(engine, database_url):
    with DiscordStandIn(limit=50, per_s=1.0) as discord:
        urls = [discord.webhook_url(f"hook{n}") for n in range(4)]
        discord.hit_global_limit(2.0)
        async with Run(settings_for(database_url, sink_max_in_flight=4), engine) as run:
            await run.sink.accept([to(0, "user0", urls[0])])
            await run.sink.flush()
            await eventually(lambda: discord.global_429s, timeout=10, what="the global limit met")
            await asyncio.sleep(0.5)
            # Other webhooks' messages, after it is known: they wait for it as well.
            await run.sink.accept([to(i, f"user{i % 4}", urls[i % 4]) for i in range(1, 12)])
            await run.sink.flush()
            await eventually(lambda: discord.count() == 12, timeout=30, what="every message after the global limit")
            await asyncio.sleep(0.2)
        # After the first global 429, the others already in flight may meet it too; none is sent once it is known.
        late = [t for t in discord.requests_during_global if t > 0.3]
        assert discord.global_429s >= 1 and late == [], discord.requests_during_global
        assert not run.dead
