"""The operations scenarios' tournament, users, queries and checks (tests/integration/test_cluster_operations.py:
scaling, kill -9 of a worker, a broker restart; test_cluster_failover.py: three brokers, leaders and coordinators
killed, a rolling restart): the events both stream, the oracle they compare standings with, and the readers of
what the pipeline committed."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import select, text

from crownstream.demo.tournament import demo_tournament
from crownstream.devpeers import DiscordStandIn, SmtpPeer, WebhookReceiver
from crownstream.ops import recompute_tournament
from crownstream.settings import Settings
from crownstream.sinks.tables import feed_items
from crownstream.sinks.webhook_endpoints import create_endpoint
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import DELIVERIES, STANDINGS_EVENTS
from tests.support.kafka_read import read_topic
from tests.support.sinks import eventually

TOURNAMENTS = ("cup-a", "cup-b", "cup-c")
STAGE = "br-finals"
WIRED = {f"user-{team:02d}-{m}" for team in (1, 2) for m in range(1, 5)}  # also on Discord and webhooks


def user_ids() -> list[str]:
    return [f"user-{team:02d}-{m}" for team in range(1, 17) for m in range(1, 5)]


def preferences_events(discord: DiscordStandIn) -> list[dict]:
    events = []
    for user in user_ids():
        prefs: dict = {"contact": {"email": f"{user}@players.example", "display_name": user}}
        if user in WIRED:
            prefs["contact"]["discord_webhook_url"] = discord.webhook_url(user)
            prefs["types"] = {
                "match.result": ["in_app", "email", "discord", "webhook"],
                "ranking.changed": ["in_app", "webhook"],
            }
        events.append(
            {
                "type": "preferences.updated",
                "event_id": f"prefs-{user}",
                "schema_version": 1,
                "occurred_at": "2026-11-24T17:00:00+00:00",
                "user_id": user,
                "preferences": prefs,
            }
        )
    return events


def tournament_events(tournaments: tuple[str, ...] = TOURNAMENTS) -> list[dict]:
    # Interleave the tournaments so that every worker has work during every phase.
    streams = [demo_tournament(t, seed=11 + i, br_matches=4) for i, t in enumerate(tournaments)]
    merged = []
    for i in range(max(map(len, streams))):
        merged += [s[i] for s in streams if i < len(s)]
    return merged


def expected_standings(events: list[dict], tournament_id: str, stage: str = STAGE) -> list[tuple[str, int]]:
    """The oracle: the pure engine's recompute from the tournament's events (``crownstream.ops``, what
    ``crownstream standings rebuild`` runs), not the streaming path."""
    return [(s.team_id, s.total_points) for s in recompute_tournament(events, tournament_id)[stage].standings]


def standings_of(url: str, tournament_id: str) -> list[tuple[str, int]] | None:
    try:
        r = httpx.get(
            f"{url}/tournaments/{tournament_id}/standings", params={"stage": STAGE, "limit": 1000}, timeout=10
        )
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    return [(row["team_id"], row["total_points"]) for row in r.json()["standings"]]


def raw_answer(url: str, tournament_id: str) -> str:
    """For a failure message: a worker's answer for the tournament's standings, as sent."""
    path = f"/tournaments/{tournament_id}/standings?stage={STAGE}&limit=1000"
    try:
        r = httpx.get(url + path, timeout=10)
    except httpx.HTTPError as exc:
        return repr(exc)
    return f"{r.status_code} {r.text[:1500]}"


async def standings_served(events: list[dict], workers: list, tournaments: tuple[str, ...] = TOURNAMENTS) -> None:
    """Every worker answers every tournament with the recomputed standings, owner or not (within 180 s each); a
    failure says what each worker answered and reports each worker's state."""
    for t in tournaments:
        expected = expected_standings(events, t)
        for w in workers:
            try:
                await eventually(
                    lambda w=w, t=t, expected=expected: standings_of(w.url, t) == expected,
                    timeout=180,
                    interval=1,
                    what=f"standings of {t} on {w.url}",
                )
            except AssertionError as exc:
                answers = {v.url: raw_answer(v.url, t) for v in workers}
                reports = "\n".join(v.self_report() for v in workers)
                raise AssertionError(f"{exc}\nexpected {expected}\nanswers {answers}\n{reports}") from None


async def produce(settings: Settings, events: list[dict], pace: float = 0.02) -> None:
    async with EventProducer(settings) as producer:
        for i, event in enumerate(events):
            await producer.send(event)
            if i % 10 == 9:
                await producer.flush()
                await asyncio.sleep(pace)


async def delivery_requests(settings: Settings) -> dict[str, list[dict]]:
    """Committed delivery requests per channel."""
    return {
        channel: await read_topic(settings.kafka_bootstrap, spec.full_name(settings), settle=1.0)
        for channel, spec in DELIVERIES.items()
    }


async def delivery_keys(settings: Settings) -> dict[str, Counter]:
    """Committed delivery requests per channel, counted by dedup key."""
    return {
        channel: Counter(r["dedup_key"] for r in records)
        for channel, records in (await delivery_requests(settings)).items()
    }


async def ledger_rows(engine, keys: set[str]) -> dict[str, object]:
    """For a failure message: where each of ``keys`` stands in the delivery ledger (absent: never accepted)."""
    if not keys:
        return {}
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT dedup_key, state, attempt_count, last_error, lease_until, claimed_by, "
                        "notification_type, user_id "
                        "FROM deliveries WHERE dedup_key = ANY(:keys)"
                    ),
                    {"keys": list(keys)},
                )
            )
            .mappings()
            .all()
        )
    found = {r["dedup_key"]: dict(r) for r in rows}
    return {key: found.get(key, "not in the ledger") for key in sorted(keys)}


async def committed_outputs(settings: Settings) -> Counter:
    """Committed standings outputs, counted by (type, event id)."""
    records = await read_topic(settings.kafka_bootstrap, STANDINGS_EVENTS.full_name(settings))
    return Counter((r["type"], r["event_id"]) for r in records)


_last_counts: dict[str, tuple] = {}


async def settled(settings: Settings) -> dict[str, Counter] | None:
    """The committed delivery requests once two reads in a row agree (fan-out has finished)."""
    keys = await delivery_keys(settings)
    signature = tuple(sum(c.values()) for c in keys.values())
    previous = _last_counts.get(settings.topic_prefix)
    _last_counts[settings.topic_prefix] = signature
    return keys if previous == signature and sum(signature) > 0 else None


async def request_differences(settings: Settings, clean: Settings, requested: dict[str, Counter]) -> str:
    """For a failure message: per channel, the requests only one of the two runs committed (by type and source
    event), and whether the disturbed run committed them after its requests were taken as settled."""
    now = await delivery_requests(settings)
    clean_now = await delivery_requests(clean)
    lines = []
    for channel in DELIVERIES:
        disturbed_by_key = {r["dedup_key"]: r for r in now[channel]}
        clean_by_key = {r["dedup_key"]: r for r in clean_now[channel]}
        by_key = disturbed_by_key | clean_by_key
        only_clean = clean_by_key.keys() - set(requested[channel])
        only_disturbed = set(requested[channel]) - clean_by_key.keys()
        late = only_clean & disturbed_by_key.keys()
        if not (only_clean or only_disturbed):
            continue
        described = Counter(
            (by_key[k].get("notification_type"), by_key[k].get("source_event_id", "?"))
            for k in only_clean | only_disturbed
        )
        lines.append(
            f"{channel}: {len(only_clean)} only in the undisturbed run ({len(late)} of them committed by "
            f"the disturbed run after it was taken as settled), {len(only_disturbed)} only in the disturbed "
            f"run; by (type, source event): {dict(described.most_common(12))}"
        )
    return "delivery requests differ from the undisturbed run's:\n" + "\n".join(lines)


async def same_outputs(settings: Settings, expected: Counter) -> bool:
    return await committed_outputs(settings) == expected


async def wire_webhook_endpoints(engine, receiver: WebhookReceiver) -> None:
    """A webhook endpoint at ``receiver`` for every WIRED user (created through the ledger, then pointed at the
    receiver's loopback URL, which create_endpoint would refuse)."""
    for user in sorted(WIRED):
        endpoint, secret = await create_endpoint(engine, user, "http://127.0.0.1/placeholder", allow_private=True)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_endpoints SET url = :u WHERE id = :i"),
                {"u": receiver.add(user, secret), "i": endpoint.id},
            )


async def preferences_applied(url: str, timeout: float = 90) -> None:
    """Wait until the worker at ``url`` has applied the last user's preferences (preferences_events)."""
    last = sorted(user_ids())[-1]
    await eventually(
        lambda: (
            httpx.get(f"{url}/users/{last}/preferences", timeout=10, headers={"Authorization": "Bearer test-token"})
            .json()
            .get("defaults")
            is False
        ),
        timeout=timeout,
        what="preferences applied",
    )


async def feed_keys(engine) -> Counter:
    """In-app feed items by dedup key."""
    async with engine.connect() as conn:
        return Counter((await conn.execute(select(feed_items.c.dedup_key))).scalars().all())


async def delivered_once(
    engine, requested: dict[str, Counter], smtp: SmtpPeer, receiver: WebhookReceiver, discord: DiscordStandIn
) -> dict[str, int]:
    """Wait until every committed delivery request is at its receiver, then check none arrived twice (after
    deduplicating raw re-sends by Message-ID / webhook-id, as users' clients do). Returns the raw re-sends."""

    def emails() -> Counter:
        return Counter({mid.strip("<>").split("@")[0]: n for mid, n in smtp.by_message_id.items()})

    missing: dict[str, int] = {}

    async def all_delivered() -> bool:
        missing.update(
            email=len(set(requested["email"]) - set(emails())),
            webhook=len(set(requested["webhook"]) - set(receiver.successes_by_id())),
            discord=len(requested["discord"]) - discord.count(),
            in_app=len(set(requested["in_app"]) - set(await feed_keys(engine))),
        )
        return not any(n > 0 for n in missing.values())

    try:
        await eventually(all_delivered, timeout=180, interval=1, what="every delivery at its receiver")
    except AssertionError as exc:
        lost = set(requested["in_app"]) - set(await feed_keys(engine))
        raise AssertionError(
            f"{exc}; still missing per channel: {missing} of { {c: len(k) for c, k in requested.items()} }; "
            f"the in-app ones in the ledger: {await ledger_rows(engine, lost)}"
        ) from None
    await asyncio.sleep(3)  # a late re-send would show now
    assert set(emails()) == set(requested["email"])
    assert set(receiver.successes_by_id()) == set(requested["webhook"])
    assert receiver.bad_signatures() == 0
    feed = await feed_keys(engine)
    assert set(feed) == set(requested["in_app"]) and max(feed.values()) == 1
    # Discord webhooks take no idempotency key, so the one re-send the design allows — a send whose worker died
    # (kill -9) before recording it, re-sent after its lease — is a second message there. It is allowed only for a
    # row whose ledger shows exactly that: a claim (attempt_count) with no recorded attempt.
    unrecorded = await unrecorded_attempts(engine, "discord")
    extra = discord.count() - len(requested["discord"])
    assert 0 <= extra <= unrecorded, (
        f"{discord.count()} Discord messages for {len(requested['discord'])} requests; "
        f"{unrecorded} Discord sends were claimed by a worker that died before recording them"
    )
    return {
        "email": sum(n - 1 for n in smtp.by_message_id.values() if n > 1),
        "webhook": sum(n - 1 for n in receiver.successes_by_id().values() if n > 1),
        "discord": extra,
    }


async def unrecorded_attempts(engine, channel: str) -> int:
    """Attempts of ``channel`` claimed but never recorded (the claiming worker died mid-send), over all rows."""
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(attempt_count - jsonb_array_length(attempts)), 0) FROM deliveries "
                    "WHERE channel = :c AND attempt_count > jsonb_array_length(attempts)"
                ),
                {"c": channel},
            )
        ).scalar_one()
