"""The notification fan-out's records, through the agents' real handlers (tests/unit/agents/handler_harness.py):
one notify record per user partition carrying that partition's users, on the partition that owns them; teams
resolved per audience partition; records written before the batching still read; preferences and directory
served from memory, current with the agent's own writes and forgotten on revoke; a broadcast walked in steps,
each asking for an early commit; one user's failure dead-letters that user's share only."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from unittest import mock

import orjson

from crownstream.agents import notifications_common, notifications_users
from crownstream.schemas.examples import example
from crownstream.streams.partitioning import partition_for
from crownstream.streams.topics import NOTIFICATION_CONTROL, PLATFORM_EVENTS, PREFERENCES, TOURNAMENT_EVENTS
from tests.unit.agents.handler_harness import Harness, run

PLATFORM, TOURNAMENT = PLATFORM_EVENTS.full_name(), TOURNAMENT_EVENTS.full_name()
USERS, AUDIENCES = notifications_common.USERS, notifications_common.AUDIENCES
USER_PARTITIONS = notifications_common.USER_PARTITIONS


def raw(body: dict) -> bytes:
    return json.dumps(body).encode()


def sent(h: Harness, topic: str) -> list[tuple[dict, int]]:
    return [(orjson.loads(v), p) for t, _k, v, p in h.internal if t == topic]


def requests(h: Harness) -> list[tuple[str, str, str]]:
    return sorted((channel, (r := orjson.loads(v))["user_id"], r["source_event_id"]) for channel, v in h.deliveries)


def users_on_distinct_partitions(n: int) -> list[str]:
    """``n`` users, at least two sharing a partition and at least two partitions."""
    users = [f"u{i:03d}" for i in range(40)][:n]
    parts = {partition_for(u, USER_PARTITIONS) for u in users}
    assert 1 < len(parts) < len(users)
    return users


async def roster(h: Harness, team: str, members: list[str], n: int = 0) -> None:
    event = example("roster.changed", event_id=f"roster-{team}-{n}", team_id=team, added=members, removed=[])
    await h.feed(PLATFORM, raw(event))


def test_a_team_notice_is_one_record_per_user_partition_on_the_partition_of_its_users():
    members = users_on_distinct_partitions(12)

    async def go():
        with Harness() as h:
            await roster(h, "team-a", members)
            assert not await h.drain()
            h.internal.clear()
            h.deliveries.clear()
            await h.feed(PLATFORM, raw(example("sponsor.approved", event_id="sp-1", team_id="team-a")))
            # First hop: the team's audience record; keep what the drain sends on to the user partitions.
            resolve = sent(h, AUDIENCES)
            captured: list[tuple[str, bytes, bytes, int]] = []
            original = h._send

            async def keep(topic, key, value, partition=None):
                await original(topic, key, value, partition)
                captured.append(h.internal[-1])

            with mock.patch.object(notifications_common, "send", keep):
                assert not await h.drain()
            return h, resolve, captured

    h, resolve, captured = run(go())
    assert [r["teams"] for r, _p in resolve] == [["team-a"]]
    notify = [(orjson.loads(v), p) for t, _k, v, p in captured if t == USERS]
    expected_partitions = {partition_for(u, USER_PARTITIONS) for u in members}
    assert sorted(p for _r, p in notify) == sorted(expected_partitions)  # one record per partition
    for record, partition in notify:
        assert record["op"] == "notify" and {partition_for(u, USER_PARTITIONS) for u in record["users"]} == {partition}
    assert sorted(u for r, _p in notify for u in r["users"]) == sorted(members)
    assert requests(h) == sorted(("in_app", u, "sp-1") for u in members)  # no email address: in-app only


def test_records_written_before_the_batching_are_still_applied():
    async def go():
        with Harness() as h:
            await h.feed(PLATFORM, raw(example("achievement.earned", event_id="ach-1", user_id="u-new")))
            notice = orjson.loads(h.internal[0][2])["notice"]
            h.internal.clear()
            for value in (
                {"op": "notify", "notice": notice, "user": "u-old"},
                {"op": "known", "user": "u-known"},
            ):
                h.internal.append((USERS, b"x", orjson.dumps(value), partition_for("u-old", USER_PARTITIONS)))
            assert not await h.drain()
            return h

    h = run(go())
    assert requests(h) == [("in_app", "u-old", "ach-1")]
    assert set(h.tables["directory"]) == {"u-old", "u-known"}


def test_a_tournament_resolves_its_teams_per_audience_partition_and_a_member_of_two_is_told_once():
    # Two teams on one audience partition, a third on another.
    teams = [f"team-{i}" for i in range(40)]
    count = notifications_common.PARTITIONS[AUDIENCES]
    by_part: dict[int, list[str]] = {}
    for t in teams:
        by_part.setdefault(partition_for(t, count), []).append(t)
    same = next(ts for ts in by_part.values() if len(ts) >= 2)[:2]
    other = next(ts[0] for p, ts in by_part.items() if p != partition_for(same[0], count))
    rosters = {same[0]: ["u1", "u2"], same[1]: ["u2", "u3"], other: ["u4"]}

    async def go():
        with Harness() as h:
            for team, members in rosters.items():
                event = example(
                    "tournament.registered", event_id=f"reg-{team}", tournament_id="t1", team_id=team, user_ids=members
                )
                await h.feed(TOURNAMENT, raw(event))
            assert not await h.drain()
            h.deliveries.clear()
            await h.feed(TOURNAMENT, raw(example("bracket.ready", event_id="br-1", tournament_id="t1")))
            resolve_tournament = sent(h, AUDIENCES)
            assert [r["op"] for r, _p in resolve_tournament] == ["resolve_tournament"]
            h.internal.clear()
            h.internal.append((AUDIENCES, b"t1", orjson.dumps(resolve_tournament[0][0]), resolve_tournament[0][1]))
            # Only the tournament hop: what it sends per audience partition.
            await notifications_users_free_hop(h)
            per_team = sent(h, AUDIENCES)
            assert not await h.drain()
            return h, per_team

    h, per_team = run(go())
    assert sorted(sorted(r["teams"]) for r, _p in per_team) == sorted([sorted(same), [other]])
    for record, partition in per_team:
        assert {partition_for(t, count) for t in record["teams"]} == {partition}
    assert [u for _c, u, s in requests(h) if s == "br-1" and _c == "in_app"] == ["u1", "u2", "u3", "u4"]


async def notifications_users_free_hop(h: Harness) -> None:
    """Apply the first captured audience record and leave what it sends in ``h.internal``."""
    from crownstream.agents import audiences

    topic, key, value, partition = h.internal.pop(0)
    assert topic == AUDIENCES
    message = SimpleNamespace(topic=topic, partition=partition, offset=0)
    await audiences.apply_audience_record(SimpleNamespace(key=key, value=value, message=message))


def test_preferences_are_served_from_memory_current_with_writes_and_reread_after_a_revoke():
    async def go():
        with Harness() as h:
            await roster(h, "team-a", ["u1"])
            assert not await h.drain()
            h.deliveries.clear()
            await h.feed(PLATFORM, raw(example("sponsor.approved", event_id="sp-1", team_id="team-a")))
            assert not await h.drain()
            first = requests(h)
            # The user's own update, through the preferences agent: the next notice uses it.
            prefs = example(
                "preferences.updated", event_id="p-1", user_id="u1", preferences={"contact": {"email": "u1@ex.org"}}
            )
            await h.feed(PREFERENCES.full_name(), raw(prefs))
            h.deliveries.clear()
            await h.feed(PLATFORM, raw(example("sponsor.approved", event_id="sp-2", team_id="team-a")))
            assert not await h.drain()
            second = requests(h)
            # A change that did not come through this worker's agent (a partition that moved here) is only
            # seen after the revoke that comes with every rebalance.
            h.tables["preferences"]["u1"] = {**h.tables["preferences"]["u1"], "opt_out_channels": ["email"]}
            h.deliveries.clear()
            await h.feed(PLATFORM, raw(example("sponsor.approved", event_id="sp-3", team_id="team-a")))
            assert not await h.drain()
            stale = requests(h)
            await notifications_users._forget_users(None, revoked=set())
            h.deliveries.clear()
            await h.feed(PLATFORM, raw(example("sponsor.approved", event_id="sp-4", team_id="team-a")))
            assert not await h.drain()
            return first, second, stale, requests(h), h

    first, second, stale, after_revoke, h = run(go())
    assert first == [("in_app", "u1", "sp-1")]
    assert second == [("email", "u1", "sp-2"), ("in_app", "u1", "sp-2")]
    assert stale == [("email", "u1", "sp-3"), ("in_app", "u1", "sp-3")]
    assert after_revoke == [("in_app", "u1", "sp-4")]
    assert set(h.tables["directory"]) == {"u1"}


def test_a_broadcast_walks_each_partition_in_steps_and_reaches_every_user_once():
    users = [f"user-{i:03d}" for i in range(30)]
    settings = notifications_users.SETTINGS.model_copy(update={"notifications_broadcast_chunk": 2})

    async def go():
        with Harness() as h, mock.patch.object(notifications_users, "SETTINGS", settings):
            for u in users:
                h.tables["directory"][u] = 1
            event = example("broadcast.requested", event_id="bc-1", broadcast_id="bc-1")
            await h.feed(NOTIFICATION_CONTROL.full_name(), raw(event))
            steps = [p for r, p in sent(h, USERS) if r["op"] == "broadcast_step"]
            assert sorted(steps) == list(range(USER_PARTITIONS))
            assert not await h.drain()
            return h

    h = run(go())
    assert requests(h) == sorted(("in_app", u, "bc-1") for u in users)
    per_partition = [sum(partition_for(u, USER_PARTITIONS) == p for u in users) for p in range(USER_PARTITIONS)]
    assert h.commit_requests == sum(n // 2 for n in per_partition)  # each step that has a next one


def test_one_users_failure_dead_letters_only_that_users_share():
    dead: list[tuple[dict, str]] = []

    async def capture(record, rejection, agent_name):
        dead.append((orjson.loads(record.value), rejection.code))

    async def go():
        with Harness() as h, mock.patch.object(notifications_users, "send_to_dead_letter", capture):
            await roster(h, "team-a", ["u1", "u2", "u3"])
            assert not await h.drain()
            h.deliveries.clear()
            h.tables["preferences"]["u2"] = {"timezone": "Not/AZone"}  # a stored value no validation allows
            await notifications_users._forget_users(None, revoked=set())  # read from the table again
            await h.feed(PLATFORM, raw(example("sponsor.approved", event_id="sp-1", team_id="team-a")))
            assert not await h.drain()
            return h

    h = run(go())
    assert requests(h) == [("in_app", "u1", "sp-1"), ("in_app", "u3", "sp-1")]
    assert [(d["users"], d["notice"]["source"], code) for d, code in dead] == [(["u2"], "sp-1", "handler_error")]


def test_to_users_splits_a_large_partition_into_bounded_records():
    async def go():
        with Harness() as h, mock.patch.object(notifications_common, "MAX_USERS_PER_RECORD", 3):
            users = [f"u{i:03d}" for i in range(40)]
            await notifications_common.to_users(users, {"op": "known"})
            return h, users

    h, users = run(go())
    records = sent(h, USERS)
    assert all(len(r["users"]) <= 3 for r, _p in records)
    assert sorted(u for r, _p in records for u in r["users"]) == sorted(users)
    for record, partition in records:
        assert {partition_for(u, USER_PARTITIONS) for u in record["users"]} == {partition}


def test_a_throttled_type_folds_past_its_limit_on_push_channels_while_the_digest_keeps_every_item():
    """achievement.earned: 3 per user (and tournament) an hour. In-app goes out at once, so it is throttled; the
    user's email takes achievements in the digest, which holds all five. What nothing followed is released by the
    timer's op: the newest folded one, carrying the other, once its window has room (on the notification clock)."""
    prefs = {
        "contact": {"email": "u1@ex.org"},
        "digest": {"enabled": True, "types": ["achievement.earned"]},
    }

    async def go():
        with Harness() as h:
            await h.feed(PREFERENCES.full_name(), raw(example("preferences.updated", user_id="u1", preferences=prefs)))
            for n in range(5):
                event = example("achievement.earned", event_id=f"ach-{n}", user_id="u1", achievement=f"A{n}")
                await h.feed(PLATFORM, raw(event))
            assert not await h.drain()
            burst = requests(h)
            digest_items = [i["source_event_id"] for i in h.tables["digests"]["u1"]["items"]["email"]]
            [state] = h.tables["throttles"]["u1"].values()
            h.deliveries.clear()
            due = datetime.fromisoformat(state["release_after"])
            await notifications_users.release_throttled("u1", due - timedelta(seconds=1))
            early = list(h.deliveries)
            await notifications_users.release_throttled("u1", due)
            released = [orjson.loads(v) for _channel, v in h.deliveries]
            await notifications_users.release_throttled("u1", due)  # a duplicate tick: nothing more
            return burst, digest_items, early, released, h

    burst, digest_items, early, released, h = run(go())
    assert burst == [("in_app", "u1", f"ach-{n}") for n in range(3)]
    assert digest_items == [f"ach-{n}" for n in range(5)]
    assert early == []
    [request] = released
    assert (request["channel"], request["source_event_id"]) == ("in_app", "ach-4")
    assert request["data"]["folded"]["source_event_ids"] == ["ach-3"]
    assert request["body"].endswith("And 1 more achievement since 2026-11-24 18:00 UTC.")
    assert len(h.deliveries) == 1
    [state] = h.tables["throttles"]["u1"].values()
    assert state["held"] is None
