"""The generic (de)serialisation helper (standings/serialization.py): ``from_plain`` rebuilds what ``to_plain``
stores, driven by the dataclass fields and their type hints, and says what is wrong with data that does not fit.
The byte-level pins of the stored formats are in test_standings_encoding.py; here, the helper's own rules and the
notice records of the user partitions (stored with short keys before the helper)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import orjson
import pytest

from crownstream.notifications.catalog import Notice
from crownstream.standings.serialization import AS_IS, PAIRS, PlainDataError, from_plain, stored_as, to_plain


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True, slots=True)
class Leaf:
    name: str
    size: int = 1


@dataclass(frozen=True, slots=True)
class Tree:
    tree_id: str = field(metadata=stored_as("id"))
    colour: Colour
    leaves: tuple[Leaf, ...]
    best: Leaf | None = None
    tags: tuple[str, ...] = ()
    grid: tuple[tuple[int, int], ...] = ()
    score: tuple[tuple[str, int], ...] = field(default=(), metadata=PAIRS)
    extra: dict[str, Any] = field(default_factory=dict, metadata=AS_IS)
    planted: datetime | None = None
    note: str | None = None


TREE = Tree(
    "t1",
    Colour.BLUE,
    (Leaf("a"), Leaf("b", 3)),
    Leaf("c", 2),
    ("x", "y"),
    ((1, 2), (3, 4)),
    (("a", 1),),
    {"k": [1, 2]},
    datetime(2026, 1, 31, 18, tzinfo=UTC),
)


def test_a_value_round_trips_through_json():
    plain = json.loads(json.dumps(to_plain(TREE)))
    assert plain == {
        "id": "t1",
        "colour": "blue",
        "leaves": [{"name": "a", "size": 1}, {"name": "b", "size": 3}],
        "best": {"name": "c", "size": 2},
        "tags": ["x", "y"],
        "grid": [[1, 2], [3, 4]],
        "score": {"a": 1},
        "extra": {"k": [1, 2]},
        "planted": "2026-01-31T18:00:00+00:00",
        "note": None,
    }
    decoded = from_plain(Tree, plain)
    assert decoded.colour is Colour.BLUE and decoded.grid == ((1, 2), (3, 4))
    # PAIRS: the class gets the stored object (converting it is its own __post_init__'s job, e.g. GameResult's).
    assert decoded == replace(TREE, score={"a": 1})


def test_absent_keys_take_the_field_defaults_and_optional_ones_none():
    assert from_plain(Tree, {"id": "t", "colour": "red", "leaves": [{"name": "a"}]}) == Tree(
        "t", Colour.RED, (Leaf("a"),)
    )
    assert from_plain(Leaf, {"size": 2}, optional={"name"}) == Leaf(None, 2)


@pytest.mark.parametrize(
    ("data", "closed", "message"),
    [
        ([1], False, "a tree must be a mapping (a JSON object), got list"),
        ({"colour": "red"}, False, "a tree is missing 'id'"),
        ({"id": "t", "colour": "green", "leaves": []}, False, "colour must be one of ['red', 'blue'], got 'green'"),
        ({"id": "t", "colour": "red", "leaves": {}}, False, "leaves must be a list, got dict"),
        ({"id": "t", "colour": "red", "leaves": [{"size": 1}]}, False, "an item of leaves is missing 'name'"),
        ({"id": "t", "colour": "red", "leaves": [], "best": 3}, False, "best must be a mapping (a JSON object)"),
        ({"id": "t", "colour": "red", "leaves": [], "planted": "noon"}, False, "planted is not an ISO-8601 time"),
        ({"id": "t", "colour": "red", "leaves": [], "tree_id": "t"}, True, "unknown field(s) ['tree_id'] in a tree"),
    ],
)
def test_data_of_the_wrong_shape_is_refused_naming_the_field(data, closed, message):
    with pytest.raises(PlainDataError) as caught:
        from_plain(Tree, data, what="a tree", closed=closed)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)  # what every caller of the old from_dict methods catches


def test_missing_fields_are_reported_before_any_value_is_converted():
    with pytest.raises(PlainDataError, match="is missing 'leaves'"):
        from_plain(Tree, {"id": "t", "colour": "green"})


def test_unknown_keys_are_ignored_unless_closed():
    assert from_plain(Leaf, {"name": "a", "colour": "red"}) == Leaf("a")


def test_a_key_error_raised_by_the_class_itself_is_not_taken_for_a_missing_field():
    @dataclass(frozen=True)
    class Picky:
        key: str

        def __post_init__(self) -> None:
            raise KeyError("from the class")

    with pytest.raises(KeyError, match="from the class"):
        from_plain(Picky, {"key": "k"})


# --- the notice records of the user partitions ------------------------------------------------------------------

# Written by the hand-written Notice.to_dict (through orjson, as the agents store them) before the helper.
OLD_NOTICES = [
    '{"type":"ranking_changed","source":"evt-1","created_at":"2026-01-31T18:00:00.123456+00:00",'
    '"title":"Team A is now 1st","body":"Up from 3rd.","path":"/tournaments/t1","data":{"stage_id":"s1",'
    '"old_rank":3,"new_rank":1,"teams":["a","b"]},"tournament_id":"t1"}',
    '{"type":"broadcast","source":"evt-2","created_at":"2026-02-01T10:00:00+02:00","title":"Maintenance tonight",'
    '"body":"","path":null,"data":{},"tournament_id":null}',
]
NOTICES = [
    Notice(
        "ranking_changed",
        "evt-1",
        datetime(2026, 1, 31, 18, 0, 0, 123456, tzinfo=UTC),
        "Team A is now 1st",
        "Up from 3rd.",
        "/tournaments/t1",
        {"stage_id": "s1", "old_rank": 3, "new_rank": 1, "teams": ["a", "b"]},
        "t1",
    ),
    Notice("broadcast", "evt-2", datetime(2026, 2, 1, 10, tzinfo=timezone(timedelta(hours=2))), "Maintenance tonight"),
]


@pytest.mark.parametrize("index", range(len(NOTICES)))
def test_a_notice_encodes_to_the_bytes_the_old_code_stored(index):
    assert orjson.dumps(NOTICES[index].to_dict()).decode() == OLD_NOTICES[index]


@pytest.mark.parametrize("index", range(len(NOTICES)))
def test_a_notice_stored_by_the_old_code_decodes_to_the_same_notice(index):
    decoded = Notice.from_dict(orjson.loads(OLD_NOTICES[index]))
    assert decoded == NOTICES[index]
    assert decoded.created_at.utcoffset() == NOTICES[index].created_at.utcoffset()
