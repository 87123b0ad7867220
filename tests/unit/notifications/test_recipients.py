"""Recipients (notifications/recipients.py): what fan-out keeps per user resolves every notification type as the
user's own preferences do and carries their contact byte for byte as a request encodes it, while users who
differ only in their addresses share one profile."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from crownstream.notifications.catalog import TYPES
from crownstream.notifications.preferences import parse_preferences
from crownstream.notifications.recipients import Profiles
from crownstream.notifications.routing import resolve

DOCUMENTS = [
    {},
    {"contact": {"email": "a@example.org"}},
    {
        "contact": {"email": "b@example.org", "display_name": "Bé \u00e9\u2603", "locale": "de"},
        "timezone": "Asia/Tokyo",
    },
    {"contact": {"discord_webhook_url": "https://discord.example/api/webhooks/1/x"}, "opt_out_channels": ["in_app"]},
    {"contact": {"email": "c@example.org"}, "unsubscribed_channels": ["email"], "types": {"ranking.changed": []}},
    {
        "contact": {"email": "d@example.org"},
        "digest": {"enabled": True, "time": "07:30", "types": ["match.result", "ranking.changed"]},
        "timezone": "America/New_York",
    },
    {
        "contact": {"email": "e@example.org"},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "timezone": "Europe/Berlin",
    },
]
TIMES = [datetime(2026, 11, 24, 12, 0, tzinfo=UTC), datetime(2026, 11, 24, 23, 30, tzinfo=UTC)]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_recipient_resolves_and_carries_the_contact_as_the_users_preferences_do(document):
    prefs = parse_preferences(document)
    expected_contact = orjson.dumps(prefs.contact_for_delivery().model_dump(mode="json"))
    profiles = Profiles()
    for entry in (profiles.from_prefs(prefs), Profiles().from_stored(prefs.model_dump(mode="json"))):
        assert entry.contact == expected_contact
        for kind in TYPES:
            for now in TIMES:
                assert entry.resolve(kind, now) == resolve(kind, prefs, now), (kind.name, now)
        assert entry.prefs.timezone == prefs.timezone and entry.prefs.digest == prefs.digest


def test_users_differing_only_in_their_addresses_share_a_profile_not_their_contact():
    profiles = Profiles()
    a = profiles.from_stored(parse_preferences({"contact": {"email": "a@example.org"}}).model_dump(mode="json"))
    b = profiles.from_prefs(parse_preferences({"contact": {"email": "b@example.org"}}))
    none = profiles.from_prefs(parse_preferences({}))
    assert a.profile is b.profile and a.contact != b.contact
    assert orjson.loads(b.contact)["email"] == "b@example.org"
    # Whether an address exists decides routes: no shared profile across that.
    assert none.profile is not a.profile and none.profile is profiles.default.profile
    assert len(profiles) == 2


def test_a_stored_value_no_validation_allows_is_refused():
    with pytest.raises(ValueError, match="IANA"):
        Profiles().from_stored({"timezone": "Not/AZone"})
