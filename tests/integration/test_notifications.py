"""Notification fan-out against the real broker, with real ``crownstream worker`` processes: events become
exactly the expected delivery requests per user and channel; a preference change (made over HTTP) applies
to the next event; digests go out once at the user's time (a fast, shifted worker clock); a cancelled
schedule sends nothing and a pending one is sent on time after a worker restart; an all-users broadcast
reaches every known user once, in chunks; a throttled type sends at most its limit per user and window, the next one
carrying the folded count, or the newest folded one when nothing follows — and a replay sends the same bytes."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from crownstream.schemas.deliveries import dedup_key
from crownstream.schemas.examples import example
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import DELIVERIES
from tests.support.kafka_read import read_topic, read_topics_to_end
from tests.support.workers import wait_all_ready

TOKEN = "notif-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = "2026-11-24T18:00:00Z"


def at(minutes: int) -> str:
    return (datetime(2026, 11, 24, 18, tzinfo=UTC) + timedelta(minutes=minutes)).isoformat()


async def deliveries(settings) -> list[dict]:
    """Every committed delivery request on the four channel topics (each on its channel's topic)."""
    topics = {spec.full_name(settings): channel for channel, spec in DELIVERIES.items()}
    out = []
    for topic, records in (await read_topics_to_end(settings.kafka_bootstrap, list(topics))).items():
        for r in records:
            assert r["channel"] == topics[topic]
            out.append(r)
    return out


async def produced_at(settings, channel: str, count: int) -> list[datetime]:
    """The Kafka timestamps (set by the worker's producer) of every committed request on ``channel``."""
    consumer = AIOKafkaConsumer(
        DELIVERIES[channel].full_name(settings),
        bootstrap_servers=settings.kafka_bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        stamps: list[datetime] = []
        deadline = time.monotonic() + 30
        while len(stamps) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            stamps += [datetime.fromtimestamp(r.timestamp / 1000, UTC) for rs in batch.values() for r in rs]
        return stamps
    finally:
        await consumer.stop()


async def wait_deliveries(settings, predicate, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    got: list[dict] = []
    while time.monotonic() < deadline:
        got = await deliveries(settings)
        if predicate(got):
            return got
        await asyncio.sleep(0.5)
    raise AssertionError(f"deliveries not as expected within {timeout}s; got {summary(got)}")


def summary(requests: list[dict]) -> collections.Counter:
    return collections.Counter(
        (r["user_id"], r["channel"], r["notification_type"], r["source_event_id"]) for r in requests
    )


async def send(settings, *events: dict) -> None:
    async with EventProducer(settings) as producer:
        for event in events:
            await producer.send(event)


def prefs_event(user_id: str, prefs: dict, n: int = 1) -> dict:
    return example("preferences.updated", event_id=f"prefs-{user_id}-{n}", user_id=user_id, preferences=prefs)


async def wait_prefs(url: str, user_id: str, check, timeout: float = 45.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    async with httpx.AsyncClient(timeout=30) as client:  # generous: the test machine may be loaded
        while time.monotonic() < deadline:
            r = await client.get(f"{url}/users/{user_id}/preferences", headers=AUTH)
            last = r.status_code, r.text[:300]
            if r.status_code == 200 and check(r.json()):
                return r.json()
            await asyncio.sleep(0.3)
    raise AssertionError(f"preferences of {user_id} not applied within {timeout}s (last: {last})")


@pytest.fixture
def worker_overrides(database_url):
    # The sinks run in every worker: give them this test's database, and nothing reachable to send to.
    return {"staff_token": TOKEN, "database_url": database_url, "smtp_port": 9}


async def test_events_become_exactly_the_expected_requests_and_preference_changes_apply_next(
    settings, topics, start_worker, worker_overrides
):
    worker = start_worker(**worker_overrides)
    await send(
        settings,
        prefs_event("u1", {"contact": {"email": "u1@example.org"}}),
        prefs_event("u2", {"contact": {"email": "u2@example.org"}, "opt_out_channels": ["in_app"]}),
    )
    # u3 never set preferences: the defaults, and no email address.
    await wait_prefs(worker.url, "u1", lambda b: not b["defaults"])
    await wait_prefs(worker.url, "u2", lambda b: not b["defaults"])
    assert (await wait_prefs(worker.url, "u3", lambda b: True))["defaults"] is True

    await send(
        settings,
        example("roster.changed", event_id="roster-1", team_id="team-a", added=["u1", "u2", "u3"], removed=[]),
        example("sponsor.approved", event_id="sponsor-1", team_id="team-a", sponsor="Acme"),
        example("payment.verified", event_id="pay-1", user_id="u2"),
        example("invite.sent", event_id="invite-1", team_id="team-b", user_id="u4", invited_by="u1"),
        example("sponsor.approved", event_id="sponsor-nobody", team_id="team-without-members", sponsor="X"),
    )
    expected = collections.Counter(
        {
            ("u1", "in_app", "roster.changed", "roster-1"): 1,
            ("u3", "in_app", "roster.changed", "roster-1"): 1,
            ("u1", "in_app", "sponsor.approved", "sponsor-1"): 1,
            ("u1", "email", "sponsor.approved", "sponsor-1"): 1,
            ("u2", "email", "sponsor.approved", "sponsor-1"): 1,
            ("u3", "in_app", "sponsor.approved", "sponsor-1"): 1,
            # critical: u2's in-app opt-out does not apply to a payment receipt
            ("u2", "in_app", "payment.verified", "pay-1"): 1,
            ("u2", "email", "payment.verified", "pay-1"): 1,
            ("u4", "in_app", "invite.sent", "invite-1"): 1,
        }
    )
    got = await wait_deliveries(settings, lambda g: sum(summary(g).values()) >= sum(expected.values()))
    assert summary(got) == expected
    # The sinks' exactly-once key: a hash of (event, user, channel, type), recomputed here independently.
    assert sorted(r["dedup_key"] for r in got) == sorted(dedup_key(s, u, ch, t) for u, ch, t, s in expected)
    sponsor_email = next(
        r for r in got if r["source_event_id"] == "sponsor-1" and r["user_id"] == "u1" and r["channel"] == "email"
    )
    assert sponsor_email["contact"]["email"] == "u1@example.org"
    assert sponsor_email["created_at"].startswith("2026-11-24T18:00:00")

    # A preference change over HTTP: validated, produced as an event, effective for the next event.
    async with httpx.AsyncClient(timeout=30) as client:
        bad = await client.put(f"{worker.url}/users/u1/preferences", headers=AUTH, json={"timezone": "Mars/Olympus"})
        assert bad.status_code == 422 and "Mars/Olympus" in bad.json()["error"]
        unauthorised = await client.put(f"{worker.url}/users/u1/preferences", json={})
        assert unauthorised.status_code == 401
        ok = await client.put(
            f"{worker.url}/users/u1/preferences",
            headers=AUTH,
            json={"contact": {"email": "u1@example.org"}, "types": {"sponsor.approved": []}},
        )
        assert ok.status_code == 202, ok.text
    await wait_prefs(worker.url, "u1", lambda b: b["preferences"]["types"] == {"sponsor.approved": []})
    await send(settings, example("sponsor.approved", event_id="sponsor-2", team_id="team-a", sponsor="Acme 2"))
    expected.update(
        {("u2", "email", "sponsor.approved", "sponsor-2"): 1, ("u3", "in_app", "sponsor.approved", "sponsor-2"): 1}
    )
    got = await wait_deliveries(settings, lambda g: sum(summary(g).values()) >= sum(expected.values()))
    await asyncio.sleep(2)  # anything extra for u1 would have arrived with the others
    assert summary(await deliveries(settings)) == expected


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def wait_metric(url: str, name: str, value: float, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while metric(url, name) < value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} below {value} after {timeout}s: {metric(url, name)}")
        await asyncio.sleep(0.3)


async def test_digest_holds_many_events_and_sends_one_per_user_at_their_time(
    settings, topics, start_worker, worker_overrides
):
    # The worker's notification clock starts at 06:00 UTC and runs 120x (an hour in 30 s).
    worker = start_worker(
        **worker_overrides,
        clock_start=datetime(2026, 11, 24, 6, tzinfo=UTC),
        clock_speed=120.0,
        notifications_tick_s=0.5,
    )
    users = ["d1", "d2"]

    def prefs(digest_time: str) -> dict:
        return {
            "contact": {"email": "digest@example.org"},
            "timezone": "Europe/Berlin",
            "types": {"ranking.changed": ["in_app", "email"]},
            "digest": {"enabled": True, "time": digest_time, "types": ["ranking.changed", "match.result"]},
        }

    await send(settings, *[prefs_event(u, prefs("23:30")) for u in users])
    for u in users:
        await wait_prefs(worker.url, u, lambda b: b["preferences"]["digest"]["enabled"])
    await send(settings, example("roster.changed", event_id="roster-d", team_id="team-d", added=users, removed=[]))
    # The roster (platform topic) and the ranking changes (standings topic) are ordered by nothing between them:
    # a busy worker may resolve a ranking change's audience before it has read the roster. Wait for the roster.
    await wait_deliveries(
        settings, lambda g: {(u, "roster-d") for u in users} <= {(r["user_id"], r["source_event_id"]) for r in g}
    )
    # Five minutes apart: under the ranking throttle (3 per 10 minutes), so every in-app one goes out.
    await send(
        settings,
        *[
            example(
                "ranking.changed",
                event_id=f"rank-{n}",
                team_id="team-d",
                new_rank=n + 1,
                old_rank=n + 2,
                occurred_at=at(5 * n),
            )
            for n in range(6)
        ],
    )
    await wait_metric(worker.url, 'crownstream_notification_held_total{mode="digest"}', 2 * 6)
    # Every email is held; now move the digest to ~20 worker-minutes (10 s) from the worker's clock.
    clock = datetime.fromtimestamp(metric(worker.url, "crownstream_notification_clock_seconds"), UTC)
    due = (clock + timedelta(minutes=21)).replace(second=0, microsecond=0)
    local = due.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M")
    await send(settings, *[prefs_event(u, prefs(local), n=2) for u in users])
    assert not [r for r in await deliveries(settings) if r["kind"] == "digest"], "a digest went out early"

    await wait_deliveries(settings, lambda g: sum(r["kind"] == "digest" for r in g) >= len(users), timeout=90)
    await asyncio.sleep(3)  # ticks keep running: a second digest the same day would show up now
    got = await deliveries(settings)
    digests = [r for r in got if r["kind"] == "digest"]
    assert sorted(r["user_id"] for r in digests) == users
    for r in digests:
        assert r["channel"] == "email" and datetime.fromisoformat(r["created_at"]) == due
        assert sorted(i["source_event_id"] for i in r["items"]) == [f"rank-{n}" for n in range(6)]
    # In-app is never held; email for each ranking change was held for the digest, not sent singly.
    singles = summary([r for r in got if r["kind"] == "single"])
    assert singles == collections.Counter(
        {
            (u, "in_app", t, s): 1
            for u in users
            for t, s in [("roster.changed", "roster-d"), *[("ranking.changed", f"rank-{n}") for n in range(6)]]
        }
    )


def schedule_status(url: str, notification_id: str) -> str | None:
    r = httpx.get(f"{url}/notifications/scheduled/{notification_id}", headers=AUTH, timeout=30)  # staff only
    return r.json()["status"] if r.status_code == 200 else None


def wait_status(url: str, notification_id: str, status: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = schedule_status(url, notification_id)
        if last == status:
            return
        time.sleep(0.3)
    raise AssertionError(f"{notification_id}: status {last!r}, expected {status!r}")


async def test_cancelled_schedule_sends_nothing_and_pending_one_is_sent_on_time_after_a_restart(
    settings, topics, start_worker, worker_overrides
):
    first = start_worker(**worker_overrides)
    send_at = datetime.now(UTC) + timedelta(seconds=40)
    audience = {"kind": "users", "user_ids": ["s1", "s2"]}
    await send(
        settings,
        example(
            "notification.scheduled",
            event_id="sched-a",
            notification_id="n-a",
            audience=audience,
            send_at=send_at.isoformat(),
        ),
        example(
            "notification.scheduled",
            event_id="sched-b",
            notification_id="n-b",
            audience=audience,
            send_at=send_at.isoformat(),
        ),
        example("notification.cancelled", event_id="cancel-a", notification_id="n-a"),
    )
    wait_status(first.url, "n-a", "cancelled")
    wait_status(first.url, "n-b", "pending")
    first.stop()

    second = start_worker(**worker_overrides)
    wait_status(second.url, "n-b", "pending")
    got = await wait_deliveries(settings, lambda g: len(g) >= 2, timeout=90)
    await asyncio.sleep(2)  # the cancelled one, due at the same instant, would show up by now
    got = await deliveries(settings)
    # No email address known for s1/s2: in-app only. Nothing of the cancelled n-a.
    assert summary(got) == collections.Counter({(u, "in_app", "scheduled", "sched-b"): 1 for u in ("s1", "s2")})
    assert all(datetime.fromisoformat(r["created_at"]) == send_at for r in got)
    # When the worker produced them (the records' Kafka timestamps), not when this test's polling saw them.
    produced = await produced_at(settings, "in_app", 2)
    late = (max(produced) - send_at).total_seconds()
    assert (min(produced) - send_at).total_seconds() >= 0 and late < 10, f"produced {late:.1f}s after send_at"
    wait_status(second.url, "n-b", "sent")
    assert schedule_status(second.url, "n-a") == "cancelled"
    print(f"\nscheduled notification produced {late:.1f}s after send_at")


async def test_all_users_broadcast_reaches_every_known_user_once_in_chunks(
    settings, topics, start_worker, worker_overrides
):
    worker = start_worker(**worker_overrides, notifications_broadcast_chunk=3)
    members = [f"m{n:02d}" for n in range(23)]
    await send(
        settings,
        *[
            example("roster.changed", event_id=f"roster-{t}", team_id=f"team-{t}", added=members[t::4], removed=[])
            for t in range(4)
        ],
    )
    roster = await wait_deliveries(settings, lambda g: len(g) >= len(members))
    assert sorted(r["user_id"] for r in roster) == members
    await send(settings, example("broadcast.requested", event_id="bc-1", broadcast_id="bc-1"))
    got = await wait_deliveries(settings, lambda g: len(g) >= 2 * len(members))
    # The producer retried: the same request again is not fanned out a second time.
    await send(settings, example("broadcast.requested", event_id="bc-1", broadcast_id="bc-1"))
    await wait_metric(worker.url, 'crownstream_duplicate_events_total{type="broadcast.requested"}', 1)
    await asyncio.sleep(2)
    got = [r for r in await deliveries(settings) if r["source_event_id"] == "bc-1"]
    assert sorted(r["user_id"] for r in got) == members
    assert {r["channel"] for r in got} == {"in_app"} and worker.alive()


async def test_tournament_audiences_resolve_through_teams_and_bad_preferences_are_dead_lettered(
    settings, topics, start_worker, worker_overrides
):
    from crownstream.streams.topics import DEAD_LETTER

    worker = start_worker(**worker_overrides)
    await send(
        settings,
        prefs_event("p9", {"timezone": "Nowhere/Town"}),  # valid envelope, invalid preferences
        example(
            "tournament.registered",
            event_id="reg-1",
            tournament_id="t-9",
            team_id="team-x",
            team_name="X",
            user_ids=["x1", "x2"],
        ),
        example(
            "tournament.registered",
            event_id="reg-2",
            tournament_id="t-9",
            team_id="team-y",
            team_name="Y",
            user_ids=["y1"],
        ),
        example("roster.changed", event_id="roster-y", team_id="team-y", added=["y2"], removed=[]),
    )
    # Registration (tournament key) and roster (team key) reach the team's table through different partitions:
    # wait for both before the tournament-wide notice.
    await wait_deliveries(
        settings,
        lambda g: (
            {("y2", "roster-y"), ("x1", "reg-1"), ("y1", "reg-2")} <= {(r["user_id"], r["source_event_id"]) for r in g}
        ),
    )
    await send(
        settings,
        example("bracket.ready", event_id="bracket-9", tournament_id="t-9", stage_id="s-1"),
        example("payout.distributed", event_id="payout-9", tournament_id="t-9", team_id="team-y"),
        example("bracket.ready", event_id="bracket-empty", tournament_id="t-nobody", stage_id="s-1"),
    )
    got = await wait_deliveries(
        settings, lambda g: sum(r["source_event_id"] in ("bracket-9", "payout-9") for r in g) >= 6
    )
    await asyncio.sleep(2)
    got = [r for r in await deliveries(settings) if r["source_event_id"] in ("bracket-9", "payout-9", "bracket-empty")]
    # Nobody has an email address: in-app only (bracket: in_app+email by default; payout: critical, same).
    assert summary(got) == collections.Counter(
        {(u, "in_app", "bracket.ready", "bracket-9"): 1 for u in ("x1", "x2", "y1", "y2")}
        | {(u, "in_app", "payout.received", "payout-9"): 1 for u in ("y1", "y2")}
    )
    dead = await read_topic(settings.kafka_bootstrap, DEAD_LETTER.full_name(settings), settle=0.5)
    assert [d["event_id"] for d in dead] == ["prefs-p9-1"]
    metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
    assert 'crownstream_notification_no_audience_total{type="bracket.ready"} 1.0' in metrics


async def test_a_replay_by_a_fresh_group_yields_byte_identical_requests(
    settings, topics, start_worker, worker_overrides
):
    """A second consumer group reading the same input (as after losing all state) emits the very same
    requests: same bytes, same dedup keys — so the sinks' ledger turns every one of them into a no-op."""
    start_worker(**worker_overrides)
    await send(
        settings,
        example("roster.changed", event_id="roster-r", team_id="team-r", added=["r1", "r2"], removed=[]),
        example("sponsor.approved", event_id="sponsor-r", team_id="team-r", sponsor="Acme"),
        example("payment.refunded", event_id="refund-r", user_id="r1"),
        # A throttled type (3 achievements per user and tournament an hour): five at once, three go out, and the
        # sixth, an hour later, carries the other two — decided by the events' times, so the replay decides alike.
        *[example("achievement.earned", event_id=f"ach-{n}", user_id="r1", occurred_at=at(n)) for n in range(5)],
        example("achievement.earned", event_id="ach-late", user_id="r1", occurred_at=at(61)),
    )
    # Not here: preferences and all-users broadcasts. Both apply as of when an event is processed, and a
    # replaying group reads the preferences topic concurrently with the events, so it may apply a user's
    # preferences before or after a given event — the dedup key is the same, the routing may differ.
    first = await wait_deliveries(settings, lambda g: len(g) >= 9)
    achievements = sorted(r["source_event_id"] for r in first if r["notification_type"] == "achievement.earned")
    assert achievements == ["ach-0", "ach-1", "ach-2", "ach-late"]
    late = next(r for r in first if r["source_event_id"] == "ach-late")
    assert late["data"]["folded"]["source_event_ids"] == ["ach-3", "ach-4"]
    from crownstream.streams.admin import ensure_topics

    replay = settings.model_copy(update={"app_id": settings.app_id + "-replay"})
    await ensure_topics(settings=replay)  # its own internal topics: it must not read the first group's
    start_worker(**worker_overrides, app_id=replay.app_id)
    raw = collections.Counter()

    def complete(g):
        raw.clear()
        raw.update(orjson.dumps(r) for r in g)
        return len(g) >= 2 * len(first)

    await wait_deliveries(settings, complete, timeout=90)
    assert set(raw.values()) == {2}, [k for k, n in raw.items() if n != 2][:3]


async def test_a_redelivered_match_result_is_not_fanned_out_again(settings, topics, start_worker, worker_overrides):
    worker = start_worker(**worker_overrides)
    await send(
        settings,
        example("stage.configured"),
        example("tournament.registered"),  # team-a: u-1, u-2
        example("tournament.registered", event_id="reg-b", team_id="team-b", team_name="Bravo", user_ids=["u-3"]),
        example("match.completed"),
    )  # team-a and team-b in the lobby
    result = "ex-match.completed"
    await wait_deliveries(settings, lambda g: sum(r["source_event_id"] == result for r in g) >= 3)
    # The producer retried after a timeout: the very same record again. Standings skip it, and so do its notices
    # (the sinks' ledger would drop them by dedup key, but only after the whole fan-out).
    # A marker behind it: the tournament's next event reaches the same users through the same partitions, one hop
    # later, so once its requests are on the topics a second fan-out of the result would be there too.
    await send(settings, example("match.completed"), example("match.started", match_id="m-2"))
    await wait_deliveries(settings, lambda g: sum(r["source_event_id"] == "ex-match.started" for r in g) >= 3)
    assert metric(worker.url, 'crownstream_duplicate_events_total{type="match.completed"}') == 1
    got = [r for r in await deliveries(settings) if r["source_event_id"] == result]
    # Nobody has an email address: in-app only.
    assert summary(got) == collections.Counter(
        {(u, "in_app", "match.result", result): 1 for u in ("u-1", "u-2", "u-3")}
    )


# --- throttles (the catalog's ranking.changed: at most 3 per user and tournament in any 10 minutes) ----------------


def ranking(n: int, team: str, tournament: str, when: str) -> dict:
    return example(
        "ranking.changed",
        event_id=f"{tournament}-rank-{n}",
        tournament_id=tournament,
        team_id=team,
        old_rank=n + 2,
        new_rank=n + 1,
        occurred_at=when,
    )


def at_s(seconds: float) -> str:
    return (datetime(2026, 11, 24, 18, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def of(requests: list[dict], user: str, kind: str = "ranking.changed") -> list[dict]:
    return sorted(
        (r for r in requests if r["user_id"] == user and r["notification_type"] == kind), key=lambda r: r["created_at"]
    )


async def test_a_burst_of_ranking_changes_is_throttled_the_next_one_carries_the_rest_and_a_replay_is_identical(
    settings, topics, start_worker, worker_overrides
):
    """Two consumer groups read the same input: this test's, and a fresh one whose notification clock is a month
    ahead (as a replay long after the events). Both start before the rankings: the roster (platform topic) and the
    rankings (standings topic) are ordered by nothing between them, and a fresh group reading both at once may
    resolve a ranking's team before its roster; once the roster is in, every decision is the throttle's."""
    from crownstream.streams.admin import ensure_topics

    replay = settings.model_copy(update={"app_id": settings.app_id + "-replay"})
    await ensure_topics(settings=replay)  # its own internal topics: it must not read the first group's
    later = datetime.now(UTC) + timedelta(days=30)
    wait_all_ready(
        [
            start_worker(wait=False, **worker_overrides),
            start_worker(wait=False, **worker_overrides, app_id=replay.app_id, clock_start=later),
        ]
    )
    await send(
        settings, example("roster.changed", event_id="roster-t", team_id="team-t", added=["t1", "t2"], removed=[])
    )
    await wait_deliveries(settings, lambda g: sum(r["source_event_id"] == "roster-t" for r in g) == 4)
    # Six changes within six seconds, then one 11 minutes later (event time: the clock plays no part).
    burst = [ranking(n, "team-t", "cup-t", at_s(n)) for n in range(6)]
    after = ranking(6, "team-t", "cup-t", at_s(11 * 60))
    await send(settings, *burst, after)
    await wait_deliveries(settings, lambda g: sum(r["source_event_id"] == after["event_id"] for r in g) == 4)
    await asyncio.sleep(3)  # a request for a folded one would have come with the others
    got = await deliveries(settings)
    raw = collections.Counter(orjson.dumps(r) for r in got)
    assert set(raw.values()) == {2}, [k for k, n in raw.items() if n != 2][:3]  # the same bytes from both groups
    once = [orjson.loads(r) for r in raw]
    for user in ("t1", "t2"):
        requests = of(once, user)
        assert [r["source_event_id"] for r in requests] == [f"cup-t-rank-{n}" for n in (0, 1, 2, 6)], user
        assert all("folded" not in r["data"] for r in requests[:3])
        carrier = requests[3]
        assert carrier["body"] == (
            "Moved from #8 to #7 with 42 points.\n\nAnd 3 more ranking changes since 2026-11-24 18:00 UTC."
        )
        assert carrier["data"]["folded"] == {
            "count": 3,
            "since": "2026-11-24T18:00:03+00:00",
            "source_event_ids": ["cup-t-rank-3", "cup-t-rank-4", "cup-t-rank-5"],
        }
        assert carrier["created_at"].startswith("2026-11-24T18:11:00")
        assert carrier["dedup_key"] == dedup_key(after["event_id"], user, "in_app", "ranking.changed")


async def test_throttled_notices_nothing_followed_go_out_when_the_window_has_room_and_a_user_may_opt_out(
    settings, topics, start_worker, worker_overrides
):
    # The worker's notification clock runs 60x from the events' time: the 10-minute window passes in 10 s.
    start = datetime(2026, 11, 24, 18, tzinfo=UTC)
    worker = start_worker(**worker_overrides, clock_start=start, clock_speed=60.0, notifications_tick_s=0.5)
    await send(settings, prefs_event("w2", {"unthrottled_types": ["ranking.changed"]}))
    await wait_prefs(worker.url, "w2", lambda b: b["preferences"]["unthrottled_types"] == ["ranking.changed"])
    await send(
        settings, example("roster.changed", event_id="roster-w", team_id="team-w", added=["w1", "w2"], removed=[])
    )
    await wait_deliveries(settings, lambda g: sum(r["source_event_id"] == "roster-w" for r in g) == 2)
    await send(settings, *[ranking(n, "team-w", "cup-w", at_s(n)) for n in range(6)])

    # w2 opted out of the throttle: all six. w1: three now...
    got = await wait_deliveries(settings, lambda g: len(of(g, "w2")) == 6 and len(of(g, "w1")) >= 3)
    assert [r["source_event_id"] for r in of(got, "w1")] == [f"cup-w-rank-{n}" for n in range(3)]
    assert all("folded" not in r["data"] for r in of(got, "w2"))
    # ...and when the window has room again (its first send leaves it) with nothing after, the newest folded one,
    # carrying the other two.
    got = await wait_deliveries(settings, lambda g: len(of(g, "w1")) >= 4, timeout=90)
    released = of(got, "w1")[3]
    assert released["source_event_id"] == "cup-w-rank-5"
    assert released["created_at"].startswith("2026-11-24T18:00:05")  # the event's time: a replay builds the same
    assert released["body"].endswith("\n\nAnd 2 more ranking changes since 2026-11-24 18:00 UTC.")
    assert released["data"]["folded"]["source_event_ids"] == ["cup-w-rank-3", "cup-w-rank-4"]
    await asyncio.sleep(3)  # ticks keep running: a second release would show up now
    assert len(of(await deliveries(settings), "w1")) == 4
    assert metric(worker.url, 'crownstream_notification_held_total{mode="throttled"}') == 3
