"""The event contract: every type round-trips; validation errors name field, value and rule."""

from __future__ import annotations

from datetime import UTC

import orjson
import pytest

from crownstream.schemas.codec import InvalidEvent, Rejection, decode, encode, validate
from crownstream.schemas.events import EVENT_MODELS, SUPPORTED_VERSIONS
from crownstream.schemas.examples import EXAMPLES, example
from crownstream.schemas.export import json_schemas
from crownstream.streams.topics import KEY_FIELDS, TOPIC_FOR_TYPE, key_for, topic_for


def test_every_event_type_has_an_example():
    assert set(EXAMPLES) == set(EVENT_MODELS)


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_round_trip(event_type):
    raw = orjson.dumps(example(event_type))
    event = decode(raw)
    assert not isinstance(event, Rejection), event
    assert event.type == event_type
    again = decode(encode(event))
    assert again == event
    assert encode(again) == encode(event)


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_every_type_has_a_topic_and_a_key(event_type):
    event = validate(example(event_type))
    assert topic_for(event_type) is TOPIC_FOR_TYPE[event_type]
    assert key_for(event) == str(getattr(event, KEY_FIELDS[event_type])).encode()


def test_occurred_at_is_normalised_to_utc():
    event = validate(example("match.started", occurred_at="2026-03-29T02:30:00+02:00"))
    assert event.occurred_at.tzinfo == UTC
    assert event.occurred_at.hour == 0


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"),
    [
        (
            lambda e: {**e, "occurred_at": "2026-01-01T10:00:00"},
            "invalid",
            "occurred_at: Input should have timezone info",
        ),
        (lambda e: {k: v for k, v in e.items() if k != "match_id"}, "invalid", "match_id: required field is missing"),
        (lambda e: {**e, "type": "match.exploded"}, "unknown_type", "unknown event type 'match.exploded'"),
        (lambda e: {**e, "schema_version": 7}, "unsupported_version", "schema_version 7 is not supported"),
        (lambda e: {**e, "tournament_id": "has space"}, "invalid", "tournament_id: String should match pattern"),
        (lambda e: {**e, "surprise": 1}, "invalid", "surprise: Extra inputs are not permitted"),
    ],
)
def test_rejections_say_what_is_wrong(mutate, code, fragment):
    result = decode(orjson.dumps(mutate(example("match.started"))))
    assert isinstance(result, Rejection)
    assert result.code == code
    assert fragment in result.reason


def test_lobby_result_rejects_a_team_listed_twice():
    bad = example("match.completed")
    bad["result"]["placements"].append({"team_id": "team-a", "placement": 3, "kills": 0})
    result = decode(orjson.dumps(bad))
    assert isinstance(result, Rejection) and "team 'team-a' appears twice" in result.reason


def test_series_winner_must_play_in_the_series():
    bad = example(
        "match.completed",
        result={
            "format": "series_game",
            "series_id": "s1",
            "team_ids": ["a", "b"],
            "game_number": 1,
            "winner_team_id": "c",
        },
    )
    result = decode(orjson.dumps(bad))
    assert isinstance(result, Rejection) and "winner 'c' is not one of the series' teams" in result.reason


def test_override_must_be_one_kind():
    bad = example("result.overridden", series_id="s1", game_number=1, winner_team_id="team-a")
    with pytest.raises(InvalidEvent, match="either a battle-royale placement"):
        validate(bad)


@pytest.mark.parametrize(
    ("raw", "code"),
    [(None, "empty"), (b"", "empty"), (b"{not json", "not_json"), (b"[1,2]", "not_object"), (b"x" * 2000, "oversize")],
)
def test_undecodable_records(raw, code):
    result = decode(raw, max_bytes=1024)
    assert isinstance(result, Rejection) and result.code == code and result.reason


def test_supported_versions_cover_every_type():
    assert set(SUPPORTED_VERSIONS) == set(EVENT_MODELS)


def test_json_schema_exported_for_every_type():
    docs = json_schemas()
    assert set(docs) == set(EVENT_MODELS)
    assert docs["match.completed"]["properties"]["type"]["const"] == "match.completed"
    assert "event_id" in docs["match.completed"]["required"]


def test_committed_json_schemas_match_the_models():
    """schemas/jsonschema/ is documentation users read; it must not drift from the models."""
    import json
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "schemas" / "jsonschema"
    committed = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert committed == json_schemas(), "run: crownstream schemas export --out schemas/jsonschema"


def test_the_contract_and_the_engine_share_one_tiebreaker_list():
    import typing

    from crownstream.schemas.events import Tiebreaker
    from crownstream.standings.tiebreakers import TIEBREAKERS

    assert typing.get_args(Tiebreaker) == TIEBREAKERS
    rules = json_schemas()["stage.configured"]["$defs"]["BattleRoyaleRules"]["properties"]["tiebreakers"]
    listed = rules["anyOf"][0]
    assert listed["items"]["enum"] == list(TIEBREAKERS) and rules["uniqueItems"] is True  # (ignored for null)
