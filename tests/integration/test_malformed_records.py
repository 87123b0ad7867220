"""Issue #12, item 4, against a real worker and the real broker: every kind of record that used to crash an
agent (and then be committed past without a trace) reaches the dead-letter topic with its reason code, a valid
event sent after them takes effect, and the worker's log shows no agent crash or restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re

import httpx
from aiokafka import AIOKafkaProducer

from crownstream.schemas.examples import example
from crownstream.streams.dlq_ops import read_dead_letters
from crownstream.streams.topics import NOTIFICATION_CONTROL, PLATFORM_EVENTS, PREFERENCES, TOURNAMENT_EVENTS
from tests.integration.test_worker import wait_for

T = "t-bad"  # every tournament record is keyed by it: one partition, so the valid events come after the bad ones


def _raw(body: dict) -> bytes:
    # The stdlib encoder writes integers of any size, as a foreign producer may.
    return json.dumps(body).encode()


def _stage(**rules) -> dict:
    return example(
        "stage.configured",
        event_id=f"cfg-{len(str(rules))}-{hash(str(rules)) & 0xFFFF}",
        tournament_id=T,
        stage_id="s-bad",
        rules={"format": "battle_royale", "point_table": "algs", "kill_points": 1, **rules},
        prizes=[],
    )


def _series_stage(points: dict) -> dict:
    return example(
        "stage.configured",
        event_id="cfg-series",
        tournament_id=T,
        stage_id="s-group",
        rules={"format": "series_group", "best_of": 3, "points": points},
        prizes=[],
    )


def _oversized() -> bytes:
    # Just under the broker's default message.max.bytes (1,048,588): the copy with its DLQ headers is over the
    # producer's 1,000,000-byte max_request_size.
    head = b'{"type":"match.started","event_id":"huge","pad":"'
    return head + b"x" * (1_040_000 - len(head) - 2) + b'"}'


# (kind, topic, value, expected DLQ code). The first ten are the issue's; the rest are their neighbours.
KINDS: list[tuple[str, object, bytes, str]] = [
    (
        "schema_version as a list",
        TOURNAMENT_EVENTS,
        _raw(example("match.started", tournament_id=T, schema_version=[1])),
        "invalid",
    ),
    (
        "schema_version as an object",
        TOURNAMENT_EVENTS,
        _raw(example("match.started", tournament_id=T, schema_version={"v": 1})),
        "invalid",
    ),
    ("unknown point table", TOURNAMENT_EVENTS, _raw(_stage(point_table="pubgm_2031")), "invalid"),
    ("empty point table", TOURNAMENT_EVENTS, _raw(_stage(point_table=[])), "invalid"),
    (
        "tiebreaker listed twice",
        TOURNAMENT_EVENTS,
        _raw(_stage(tiebreakers=["total_points", "kills", "total_points"])),
        "invalid",
    ),
    (
        "series-group points for only some final scores",
        TOURNAMENT_EVENTS,
        _raw(_series_stage({"2-0": 3, "0-2": 0})),
        "invalid",
    ),
    ("kill_points overflowing 64-bit totals", TOURNAMENT_EVENTS, _raw(_stage(kill_points=2**62)), "invalid"),
    ("a valid event of another topic's type", TOURNAMENT_EVENTS, _raw(example("invite.accepted")), "wrong_topic"),
    ("a DLQ copy over the producer's limit", TOURNAMENT_EVENTS, _oversized(), "oversize"),
    (
        "NUL in free text",
        TOURNAMENT_EVENTS,
        _raw(example("tournament.registered", tournament_id=T, team_name="Alpha\x00")),
        "invalid",
    ),
    # --- more of the same families
    (
        "schema_version true",
        TOURNAMENT_EVENTS,
        _raw(example("match.started", tournament_id=T, schema_version=True)),
        "invalid",
    ),
    (
        "schema_version beyond 64 bits",
        TOURNAMENT_EVENTS,
        _raw(example("match.started", tournament_id=T, schema_version=10**30)),
        "invalid",
    ),
    ("kill_points beyond 64 bits", TOURNAMENT_EVENTS, _raw(_stage(kill_points=10**30)), "invalid"),
    (
        "series-group points for a score no best-of-3 has",
        TOURNAMENT_EVENTS,
        _raw(_series_stage({"2-0": 3, "2-1": 2, "1-2": 1, "0-2": 0, "3-0": 3})),
        "invalid",
    ),
    (
        "lobby kills beyond the bound",
        TOURNAMENT_EVENTS,
        _raw(
            example(
                "match.completed",
                tournament_id=T,
                stage_id="s-ok",
                result={
                    "format": "battle_royale",
                    "sequence": 1,
                    "placements": [{"team_id": "a", "placement": 1, "kills": 2**62}],
                },
            )
        ),
        "invalid",
    ),
    (
        "an override of both kinds at once",
        TOURNAMENT_EVENTS,
        _raw(example("result.overridden", tournament_id=T, series_id="x1")),
        "invalid",
    ),
    (
        "control character in a dispute reason",
        TOURNAMENT_EVENTS,
        _raw(example("match.disputed", tournament_id=T, reason="wrong\x1b[2Jkills")),
        "invalid",
    ),
    (
        "a control character in an id",
        TOURNAMENT_EVENTS,
        _raw(example("match.started", tournament_id=T, match_id="m\x001")),
        "invalid",
    ),
    ("a tournament type on the platform topic", PLATFORM_EVENTS, _raw(example("match.started")), "wrong_topic"),
    (
        "a platform type on the notification-control topic",
        NOTIFICATION_CONTROL,
        _raw(example("sponsor.approved")),
        "wrong_topic",
    ),
    (
        "NUL in a broadcast body",
        NOTIFICATION_CONTROL,
        _raw(example("broadcast.requested", body="down\x00tonight")),
        "invalid",
    ),
    (
        "NUL in a contact email",
        PREFERENCES,
        _raw(example("preferences.updated", preferences={"contact": {"email": "a\x00@example.com"}})),
        "invalid",
    ),
    (
        "NUL in a Discord webhook URL",
        PREFERENCES,
        _raw(
            example(
                "preferences.updated",
                user_id="u-2",
                preferences={"contact": {"discord_webhook_url": "https://discord.com/api/webhooks/1/t\x00k"}},
            )
        ),
        "invalid",
    ),
]

# Faust's words for an agent that raised (faust/agents/agent.py, faust/agents/replies.py) and Python's traceback.
CRASH = re.compile(r"Traceback|[Cc]rashed|Agent .* (?:raised|exited)|restarting agent|CRITICAL")

VALID = [
    example(
        "stage.configured",
        event_id="ok-cfg",
        tournament_id=T,
        stage_id="s-ok",
        rules={"format": "battle_royale", "point_table": "algs", "kill_points": 1},
        prizes=[],
    ),
    example(
        "match.completed",
        event_id="ok-r1",
        tournament_id=T,
        stage_id="s-ok",
        match_id="m1",
        result={
            "format": "battle_royale",
            "sequence": 1,
            "placements": [{"team_id": "a", "placement": 1, "kills": 3}, {"team_id": "b", "placement": 2, "kills": 0}],
        },
    ),
]


async def test_every_malformed_kind_reaches_the_dlq_and_the_worker_goes_on(settings, topics, start_worker):
    worker = start_worker()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_request_size=2_000_000, enable_idempotence=True
    )
    await producer.start()
    sent: dict[tuple[str, int, int], tuple[str, str, bytes]] = {}  # (topic, partition, offset) -> kind, code, value
    try:
        for kind, spec, value, code in KINDS:
            topic = spec.full_name(settings)
            meta = await producer.send_and_wait(topic, value=value, key=T.encode())
            sent[(topic, meta.partition, meta.offset)] = (kind, code, value)
        for body in VALID:
            await producer.send_and_wait(TOURNAMENT_EVENTS.full_name(settings), value=_raw(body), key=T.encode())
    finally:
        await producer.stop()

    def applied() -> bool:
        r = httpx.get(f"{worker.url}/tournaments/{T}/standings", params={"stage": "s-ok"}, timeout=5)
        return r.status_code == 200 and [row["team_id"] for row in r.json()["standings"]] == ["a", "b"]

    wait_for(applied, 60)  # the valid events after the malformed ones
    activity = httpx.get(f"{worker.url}/tournaments/{T}/activity", timeout=5).json()
    # Only the valid tournament events took effect: none of the malformed ones was counted as applied.
    assert activity["counts"] == {"stage.configured": 1, "match.completed": 1}, activity

    letters = []
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        letters = await read_dead_letters(settings=settings)
        if len(letters) >= len(KINDS):
            break
        await asyncio.sleep(0.5)
    by_source = {(letter.source_topic, letter.source_partition, letter.source_offset): letter for letter in letters}

    reached = []
    for source, (kind, code, value) in sent.items():
        letter = by_source.get(source)
        assert letter is not None, f"{kind}: no dead letter for {source}; worker log:\n{worker.tail()}"
        assert letter.code == code, (kind, letter.code, letter.reason)
        assert letter.reason, kind
        if letter.truncated:
            # Only the head fits; the original is named by its size and hash.
            assert kind == "a DLQ copy over the producer's limit"
            assert letter.original_size == len(value)
            assert letter.original_sha256 == hashlib.sha256(value).hexdigest()
            assert value.startswith(bytes(letter.value)) and len(letter.value) > 900_000
        else:
            assert bytes(letter.value) == value, kind
        reached.append(kind)
    assert len(letters) == len(KINDS), [(x.code, x.reason[:80]) for x in letters]
    print(f"\nmalformed-record kinds tried: {len(KINDS)}, reached the DLQ with their code: {len(reached)}")
    assert len(reached) == len(KINDS)

    # No agent crashed or restarted on the way, and the worker is still up.
    assert worker.alive()
    log = worker.log_path.read_text(errors="replace")
    # Faust cancels and restarts its agents on a rebalance ("Crashed reason=CancelledError()"): not a crash.
    crashes = [line for line in log.splitlines() if CRASH.search(line) and "CancelledError" not in line]
    assert not crashes, "\n".join(crashes[:20])
