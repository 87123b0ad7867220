"""One-click unsubscribe links: who may unsubscribe whom, and what the preferences become."""

from __future__ import annotations

import pytest

from crownstream.notifications.catalog import CATALOG
from crownstream.notifications.preferences import DEFAULTS, Preferences
from crownstream.notifications.unsubscribe import ALL_TYPES, key_is_valid, unsubscribe_key, without_email


def test_a_key_is_valid_only_for_its_user_type_and_secret():
    key = unsubscribe_key("s3cret", "alice", "match.result")
    assert key_is_valid("s3cret", "alice", "match.result", key)
    assert not key_is_valid("s3cret", "bob", "match.result", key)
    assert not key_is_valid("s3cret", "alice", "invite.sent", key)
    assert not key_is_valid("other", "alice", "match.result", key)
    assert not key_is_valid("s3cret", "alice", "match.result", "")


@pytest.mark.parametrize("kind", sorted(CATALOG))
def test_unsubscribing_a_type_takes_only_email_off_it(kind):
    after = without_email(DEFAULTS, kind)
    expected = sorted(CATALOG[kind].default_channels - {"email"})
    assert sorted(after.types[kind]) == expected
    assert {k: v for k, v in after.types.items() if k != kind} == {}
    assert after.unsubscribed_channels == []


def test_an_explicit_choice_keeps_its_other_channels_and_other_types():
    prefs = Preferences(types={"match.result": ["discord", "email", "webhook"], "invite.sent": ["email"]})
    after = without_email(prefs, "match.result")
    assert after.types == {"match.result": ["discord", "webhook"], "invite.sent": ["email"]}


def test_all_is_a_hard_unsubscribe_and_idempotent():
    after = without_email(DEFAULTS, ALL_TYPES)
    assert after.unsubscribed_channels == ["email"]
    assert without_email(after, ALL_TYPES) == after


def test_an_unknown_type_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown notification type 'nope'"):
        without_email(DEFAULTS, "nope")
