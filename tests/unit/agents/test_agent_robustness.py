"""Records that used to crash an agent (issue #12, item 4) and NUL at the edge (item 6): each one is refused at
the edge with a precise reason or dead-lettered by the agent's own path, and the agent goes on."""

from __future__ import annotations

import asyncio
import hashlib
import json

import orjson
import pytest
from aiokafka.errors import IllegalOperation, KafkaConnectionError, MessageSizeTooLargeError, ProducerFenced

from crownstream.agents import decoding, tournament_events
from crownstream.notifications.preferences import InvalidPreferences, parse_preferences
from crownstream.schemas.codec import Rejection, decode
from crownstream.schemas.events import Envelope
from crownstream.schemas.examples import example
from crownstream.streams.dead_letter import (
    HEADER_REASON,
    HEADER_VALUE_SHA256,
    HEADER_VALUE_SIZE,
    HEADER_VALUE_TRUNCATED,
    DeadLetter,
    dead_letter_headers,
    fit_dead_letter,
)
from crownstream.streams.topics import PLATFORM_EVENTS, PREFERENCES, TOURNAMENT_EVENTS
from tests.unit.agents.handler_harness import Harness, run

TOURNAMENT = TOURNAMENT_EVENTS.full_name()


def raw(body: dict) -> bytes:
    # The stdlib encoder writes integers of any size, as a foreign producer may.
    return json.dumps(body).encode()


def stage(**rules) -> dict:
    base = {"format": "battle_royale", "point_table": "pubgm_2023", "kill_points": 1}
    return example(
        "stage.configured", event_id="cfg", tournament_id="t1", stage_id="s1", rules={**base, **rules}, prizes=[]
    )


def lobby(match_id: str, seq: int, *rows) -> dict:
    return example(
        "match.completed",
        event_id=f"r-{match_id}",
        tournament_id="t1",
        stage_id="s1",
        match_id=match_id,
        result={
            "format": "battle_royale",
            "sequence": seq,
            "placements": [dict(zip(("team_id", "placement", "kills"), r, strict=True)) for r in rows],
        },
    )


# --- the decode contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [[1], {"v": 1}, True, 10**30, 2**64, 1.0, "1", None])
def test_schema_version_of_any_type_is_a_rejection(version):
    result = decode(raw(example("match.started", schema_version=version)))
    assert isinstance(result, Rejection)
    assert result.code in ("invalid", "unsupported_version")
    assert "schema_version" in result.reason


def test_decode_turns_any_internal_failure_into_a_rejection(monkeypatch):
    from crownstream.schemas import codec

    def boom(data):
        raise RuntimeError("a bug in validation")

    monkeypatch.setattr(codec, "_from_dict", boom)
    result = decode(b'{"type": "match.started"}')
    assert isinstance(result, Rejection) and result.code == "decode_error"
    assert "RuntimeError: a bug in validation" in result.reason


def test_a_reason_stays_short_whatever_the_record():
    body = lobby("m1", 1, *[(f"team-{i}", "first", -1) for i in range(800)])
    result = decode(raw(body))
    assert isinstance(result, Rejection) and result.code == "invalid"
    assert len(result.reason) <= 2000 and "more problem(s)" in result.reason


# --- rule sets at the edge ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ({"point_table": "pubgm_2031"}, "unknown point table 'pubgm_2031'"),
        ({"point_table": []}, "point_table"),
        ({"tiebreakers": ["total_points", "kills", "total_points"]}, "listed twice"),
        ({"tiebreakers": []}, "tiebreakers"),
        ({"tiebreakers": ["luck"]}, "tiebreakers.0"),
        ({"kill_points": 2**62}, "kill_points: Input should be less than or equal to 1000000"),
        ({"kill_points": 10**30}, "kill_points: Input should be a valid integer"),
        ({"kill_points": True}, "kill_points: Input should be a valid integer"),
        ({"point_table": [10, 2**40]}, "point_table"),
        ({"starting_points": {"team-a": -(2**62)}}, "starting_points.team-a"),
        ({"kill_cap": -1}, "kill_cap"),
    ],
)
def test_battle_royale_rules_the_engine_cannot_use_are_refused_at_the_edge(rules, fragment):
    result = decode(raw(stage(**rules)))
    assert isinstance(result, Rejection) and result.code == "invalid", result
    assert fragment in result.reason, result.reason


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ({"best_of": 3, "points": {"2-0": 3, "0-2": 0}}, "missing ['2-1', '1-2']"),
        ({"best_of": 5, "points": {"2-0": 3}}, "cannot happen in a best-of-5"),
        ({"best_of": 3, "points": {"2-0": 3, "2-1": 2, "1-2": 1, "0-2": -1}}, "points.0-2"),
        ({"best_of": 4}, "best_of"),
    ],
)
def test_series_group_points_must_cover_every_final_score(rules, fragment):
    body = example("stage.configured", rules={"format": "series_group", **rules}, prizes=[])
    result = decode(raw(body))
    assert isinstance(result, Rejection) and result.code == "invalid", result
    assert fragment in result.reason, result.reason


def test_a_complete_series_group_table_is_accepted():
    body = example(
        "stage.configured",
        rules={"format": "series_group", "best_of": 3, "points": {"2-0": 3, "2-1": 2, "1-2": 1, "0-2": 0}},
        prizes=[],
    )
    assert isinstance(decode(raw(body)), Envelope)


def test_the_largest_accepted_values_never_overflow_an_output():
    # Every bound at its maximum, a full lobby, then the stage completes: every output encodes.
    top = {
        "point_table": [1_000_000] * 1000,
        "kill_points": 1_000_000,
        "starting_points": {"a": 1_000_000_000, "b": -1_000_000_000},
    }
    events = [stage(**top)] + [lobby(f"m{n}", n, ("a", 1, 1000), ("b", 2, 1000)) for n in range(1, 30)]
    events.append(example("tournament.completed", event_id="done", tournament_id="t1", stage_id="s1"))

    async def go():
        with Harness() as h:
            for e in events:
                outcome = await h.feed(TOURNAMENT, raw(e))
                assert isinstance(outcome.result, Envelope), outcome.result
            assert not await h.drain()
            return h

    h = run(go())
    assert h.tables["stages"]["t1/s1"]["finalized"] == "done"
    final = [o for o in map(orjson.loads, h.emitted) if o["type"] == "standings.finalized"]
    assert [(p["team_id"], p["points"]) for p in final[0]["placements"]] == [
        ("a", 1_000_000_000 + 29 * (1_000_000 + 1000 * 1_000_000)),
        ("b", -1_000_000_000 + 29 * (1_000_000 + 1000 * 1_000_000)),
    ]


# --- free text and ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("tournament.registered", "team_name", "Alpha\x00"),
        ("stage.configured", "name", "Finals\x1b[31m"),
        ("match.disputed", "reason", "wrong\x00kills"),
        ("result.overridden", "actor", "admin\n7"),
        ("team.disqualified", "reason", "cheat\x85ing"),
        ("notification.scheduled", "title", "Finals\r\nBcc: x"),
        ("broadcast.requested", "body", "down\x00tonight"),
        ("sponsor.approved", "sponsor", "\x07Energy"),
        ("match.started", "match_id", "m\x001"),
        ("match.started", "match_id", "m" * 129),
    ],
)
def test_control_characters_and_long_ids_are_refused_at_the_edge(event_type, field, value):
    result = decode(raw(example(event_type, **{field: value})))
    assert isinstance(result, Rejection) and result.code == "invalid", result
    assert field in result.reason


def test_multi_line_text_keeps_tabs_and_line_feeds():
    assert isinstance(decode(raw(example("broadcast.requested", body="line 1\n\tline 2"))), Envelope)


@pytest.mark.parametrize(
    ("prefs", "fragment"),
    [
        ({"contact": {"email": "a\x00@example.com"}}, "contact.email: contains the control character U+0000"),
        (
            {"contact": {"discord_webhook_url": "https://discord.com/api/webhooks/1/secret\x00"}},
            "contact.discord_webhook_url: contains the control character U+0000",
        ),
        ({"contact": {"display_name": "Ann\x1b"}}, "contact.display_name"),
        ({"timezone": "Europe/Berlin\x00"}, "timezone"),
        ({"timezone": "a" * 10_000}, "timezone"),
        ({"digest": {"types": ["match.result\x00"]}}, "digest.types.0"),
        ({"types\x00": {}}, "field name"),
    ],
)
def test_preferences_refuse_control_characters_with_a_clear_message(prefs, fragment):
    with pytest.raises(InvalidPreferences) as caught:
        parse_preferences(prefs)
    assert fragment in str(caught.value)
    assert "secret" not in str(caught.value)  # never the value itself: a webhook URL is a credential


# --- the agents' path ---------------------------------------------------------------------------------------


def test_a_type_of_another_topic_is_dead_lettered_with_its_home():
    async def go():
        with Harness() as h:
            return await h.feed(TOURNAMENT, raw(example("invite.accepted")))

    outcome = run(go())
    assert outcome.code == "wrong_topic"
    assert PLATFORM_EVENTS.full_name() in outcome.result.reason


@pytest.mark.parametrize("topic_spec", [PLATFORM_EVENTS, PREFERENCES])
def test_every_input_topic_refuses_foreign_types(topic_spec):
    async def go():
        with Harness() as h:
            return await h.feed(topic_spec.full_name(), raw(example("match.started")))

    outcome = run(go())
    assert outcome.code == "wrong_topic" and TOURNAMENT in outcome.result.reason


def test_a_handler_that_raises_dead_letters_its_record_and_the_next_one_is_applied(monkeypatch):
    calls = []

    async def broken(event):
        calls.append(event.event_id)
        if event.event_id == "bad":
            raise KeyError("no such stage")

    monkeypatch.setitem(tournament_events.HANDLERS, "match.started", {tournament_events.Stage.NOTIFY: broken})
    forgotten = []
    monkeypatch.setattr(tournament_events, "FORGET_ON_ERROR", [lambda e: forgotten.append(e.event_id)])

    async def go():
        with Harness() as h:
            first = await h.feed(TOURNAMENT, raw(example("match.started", event_id="bad", tournament_id="t1")))
            second = await h.feed(TOURNAMENT, raw(example("match.started", event_id="good", tournament_id="t1")))
            return first, second, h

    first, second, h = run(go())
    assert first.code == "handler_error"
    assert first.result.reason == "KeyError: 'no such stage'"
    assert isinstance(second.result, Envelope)
    assert calls == ["bad", "good"] and forgotten == ["bad"]
    # Only the event that took effect is counted in the tournament's activity.
    assert h.tables["tournament_activity"]["t1"]["counts"] == {"match.started": 1}


def test_a_handler_error_never_carries_a_credential():
    from crownstream.schemas.deliveries import Contact

    url = "https://discord.com/api/webhooks/123/very-secret-token"
    try:
        Contact(discord_webhook_url=url + "x" * 2000)
    except Exception as exc:
        rejection = decoding.handler_error(exc)
    assert rejection.code == "handler_error" and "discord_webhook_url" in rejection.reason
    assert "very-secret-token" not in rejection.reason
    plain = decoding.handler_error(RuntimeError(f"POST {url} failed"))
    assert "very-secret-token" not in plain.reason and "/api/webhooks/123/" in plain.reason
    headers = dict(dead_letter_headers(Rejection("invalid", f"bad {url}"), "t", 0, 0, "a"))
    assert b"very-secret-token" not in headers[HEADER_REASON]


def test_kafka_errors_are_not_the_records_fault():
    from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

    async def lost(event):
        raise KafkaConnectionError("broker gone")

    async def too_big(event):
        raise MessageSizeTooLargeError("output too large")

    event = raw(example("match.started"))
    with pytest.raises(KafkaConnectionError):
        run(decoding.process(event, TOURNAMENT, lost, max_bytes=512_000))
    outcome = run(decoding.process(event, TOURNAMENT, too_big, max_bytes=512_000))
    assert isinstance(outcome, Rejection) and outcome.code == "handler_error"


def test_invalid_preferences_go_to_the_dlq_as_invalid():
    async def go():
        with Harness() as h:
            body = example("preferences.updated", preferences={"contact": {"email": "x\x00@y.z"}})
            return await h.feed(PREFERENCES.full_name(), raw(body)), h

    outcome, h = run(go())
    assert outcome.code == "invalid" and "contact.email" in outcome.result.reason
    assert h.tables["preferences"] == {}


# --- a DLQ copy always fits ---------------------------------------------------------------------------------


def test_a_small_record_is_copied_byte_for_byte():
    headers = dead_letter_headers(Rejection("not_json", "nope"), "t", 0, 5, "a")
    copy = fit_dead_letter(b"k", b"{bad", headers)
    assert (copy.key, copy.value, copy.headers) == (b"k", b"{bad", headers)


@pytest.mark.parametrize("size", [999_000, 1_000_000, 1_048_000, 5_000_000])
def test_an_oversized_copy_keeps_its_head_size_and_hash(size):
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    headers = dead_letter_headers(Rejection("oversize", "r" * 50_000), "topic", 3, 7, "tournament-events")
    copy = fit_dead_letter(b"key", value, headers)
    framing = 61 + 64  # a record batch's header plus generous record framing
    assert copy.size + framing <= 1_000_000
    h = dict(copy.headers)
    assert h[HEADER_VALUE_TRUNCATED] == b"true"
    assert int(h[HEADER_VALUE_SIZE]) == size
    assert h[HEADER_VALUE_SHA256].decode() == hashlib.sha256(value).hexdigest()
    assert value.startswith(copy.value) and len(copy.value) > 900_000
    assert len(h[HEADER_REASON].decode()) <= 2000
    letter = DeadLetter.from_record(0, copy.key, copy.value, copy.headers)
    assert letter.truncated and letter.original_size == size


def test_aiokafka_accepts_the_copy():
    # The producer's own size estimate (headers included) against its default max_request_size.
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    value = b"x" * 1_048_000
    headers = dead_letter_headers(Rejection("oversize", "too big"), "topic", 0, 0, "agent")
    copy = fit_dead_letter(b"k" * 10_000, value, headers)
    estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes(copy.key, copy.value, copy.headers)
    assert estimate <= 1_000_000
    assert DeadLetter.from_record(0, copy.key, copy.value, copy.headers).truncated


@pytest.mark.parametrize(
    "failure",
    [
        IllegalOperation(
            "Can't send messages while not in transaction"
        ),  # a fenced producer's sends (not a KafkaError)
        ProducerFenced(),
        KafkaConnectionError("Connection at 127.0.0.1:9092 closed"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_kafka_failing_under_a_handler_is_not_the_records_fault(failure):
    """A send Kafka refuses is raised to the agent's loop (which loses the batch, to be read again after a
    rebalance), never dead-lettered as if the record were bad."""

    async def handler():
        raise failure

    with pytest.raises(type(failure)):
        asyncio.run(decoding.guard(handler, "match.completed", "evt-1", agent="tournament-events"))


def test_a_record_too_large_to_send_is_the_records_fault():
    async def handler():
        raise MessageSizeTooLargeError()

    rejection = asyncio.run(decoding.guard(handler, "match.completed", "evt-1", agent="tournament-events"))
    assert rejection is not None and rejection.code == "handler_error"
