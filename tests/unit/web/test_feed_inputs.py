"""What a feed client sends: the items a state change names, where a live stream resumes, a token's expiry."""

from __future__ import annotations

import time

import pytest

from crownstream.settings import Settings
from crownstream.sinks.feed_states import ACTIONS, Selection
from crownstream.web.auth import mint_user_token
from crownstream.web.errors import HttpError
from crownstream.web.feed_inputs import resume_after, selection

LIMITS = Settings(http_max_ids=3)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"ids": [3, 1]}, Selection(ids=(3, 1))),
        ({"ids": []}, Selection(ids=())),
        ({"up_to": 42}, Selection(up_to=42)),
        ({"up_to": 0}, Selection(up_to=0)),
        ({"all": True}, Selection()),
    ],
)
def test_a_selection_names_items_one_way(body, expected):
    assert selection(body, LIMITS) == expected


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "exactly one of ids, up_to or all"),
        ({"ids": [1], "up_to": 2}, "exactly one of ids, up_to or all"),
        ({"all": True, "ids": [1]}, "exactly one of ids, up_to or all"),
        ({"all": False}, "all must be true"),
        ({"all": 1}, "all must be true"),
        ({"up_to": True}, "up_to must be an integer"),
        ({"up_to": -1}, "up_to must be between 0"),
        ({"up_to": 2**63}, "up_to must be between 0"),
        ({"up_to": "7"}, "up_to must be an integer"),
        ({"ids": [1, 2, 3, 4]}, "at most 3"),
        ({"ids": [0]}, "ids[0] must be between 1"),
        ({"ids": "1,2"}, "ids must be a list"),
        ({"id": [1]}, "unknown field 'id'"),
    ],
)
def test_a_bad_selection_is_a_400_that_says_what_to_send(body, says):
    with pytest.raises(HttpError) as refused:
        selection(body, LIMITS)
    assert refused.value.status == 400
    assert says in refused.value.message


def test_selection_is_ids_or_up_to_never_both():
    with pytest.raises(ValueError):
        Selection(ids=(1,), up_to=2)


def test_every_action_sets_or_clears_a_state_column():
    assert {a: (c.column, c.set) for a, c in ACTIONS.items()} == {
        "seen": ("seen_at", True),
        "read": ("read_at", True),
        "archive": ("archived_at", True),
        "unarchive": ("archived_at", False),
    }


@pytest.mark.parametrize(
    ("last_event_id", "after", "expected"),
    [
        (None, None, None),
        ("", "", None),
        ("17", None, 17),
        (" 17 ", None, 17),
        ("17", "99", 17),  # a reconnecting EventSource's header wins over the URL it was opened with
        (None, "99", 99),
        ("0", None, 0),
        (str(2**63 - 1), None, 2**63 - 1),
    ],
)
def test_where_a_stream_resumes(last_event_id, after, expected):
    assert resume_after(last_event_id, after) == expected


@pytest.mark.parametrize(
    ("last_event_id", "after", "names"),
    [
        ("abc", None, "Last-Event-ID"),
        ("-1", None, "Last-Event-ID"),
        (str(2**63), None, "Last-Event-ID"),
        ("1.5", None, "Last-Event-ID"),
        ("１２", None, "Last-Event-ID"),
        (None, "x", "after"),
        (None, "-3", "after"),
    ],
)
def test_a_bad_resume_point_is_a_400_naming_it(last_event_id, after, names):
    with pytest.raises(HttpError) as refused:
        resume_after(last_event_id, after)
    assert refused.value.status == 400 and names in refused.value.message


def test_a_streams_credential_expiry():
    from crownstream.web.feed_events import token_expiry

    settings = Settings(user_token_key="k" * 40)
    before = time.time()
    token = mint_user_token("ada", 600, settings)
    expiry = token_expiry(f"Bearer {token}")
    assert expiry is not None and before + 599 <= expiry <= time.time() + 601
    assert token_expiry("Bearer the-staff-token") is None  # staff tokens do not expire
    assert token_expiry(None) is None
    assert token_expiry("Bearer a.b.c") is None  # not a JWT at all (the access check refused it already)
