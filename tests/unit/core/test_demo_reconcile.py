"""The demo's requested-vs-received comparison (crownstream/demo/reconcile.py): pure, no peers."""

from collections import Counter
from datetime import UTC, datetime

from crownstream.demo import reconcile
from crownstream.demo.channels import DIGEST_USER, DISCORD_USERS, WEBHOOK_USERS, demo_users, preferences
from crownstream.notifications.preferences import Preferences
from crownstream.schemas.deliveries import DeliveryRequest, dedup_key
from crownstream.sinks.discord_payload import build_payload


def test_everything_received_once_matches():
    c = reconcile.check("email", ["a", "b"], Counter({"a": 1, "b": 1}))
    assert (c.requested, c.received, c.missing, c.duplicates, c.unexpected) == (2, 2, 0, 0, 0) and c.matches


def test_missing_duplicate_and_unexpected_are_each_counted_and_fail_the_match():
    c = reconcile.check("webhook", ["a", "b", "c"], Counter({"a": 3, "b": 1, "x": 1}))
    assert (c.requested, c.received, c.missing, c.duplicates, c.unexpected) == (3, 3, 1, 2, 1)
    assert not c.matches
    assert not reconcile.check("email", ["a"], Counter({"a": 2})).matches
    assert not reconcile.check("email", ["a"], Counter()).matches


def test_a_request_committed_twice_is_one_delivery():
    assert reconcile.check("email", ["a", "a"], Counter({"a": 1})).matches


def test_reconciliation_lines_say_mismatch_and_no():
    r = reconcile.Reconciliation(
        checks=[reconcile.check("email", ["a"], Counter({"a": 1})), reconcile.check("in_app", ["k"], Counter())]
    )
    text = "\n".join(r.lines())
    assert not r.matches and "MISMATCH" in text and "Deliveries match the requests: NO" in text
    assert not reconcile.Reconciliation().matches  # nothing checked is not a match


def test_message_id_key():
    assert reconcile.message_id_key("<abc123@crownstream.invalid>") == "abc123"


def test_discord_message_built_by_the_sink_has_the_identity_of_its_request():
    created = datetime(2026, 11, 24, 18, 55, tzinfo=UTC)
    request = DeliveryRequest(
        dedup_key=dedup_key("e1", "user-01-1", "discord", "match.result"),
        channel="discord",
        notification_type="match.result",
        user_id="user-01-1",
        source_event_id="e1",
        created_at=created,
        title="Result of match br-m1",
        body="1st",
    )
    as_sent = reconcile.discord_message_identity("user-01-1", build_payload(request))
    as_requested = reconcile.discord_request_identity(
        {
            "user_id": "user-01-1",
            "title": "Result of match br-m1",
            "created_at": "2026-11-24T18:55:00Z",
            "notification_type": "match.result",
        }
    )
    assert as_sent == as_requested
    other = reconcile.discord_request_identity(
        {
            "user_id": "user-01-1",
            "title": "Result of match br-m1",
            "created_at": "2026-11-24T19:00:00Z",
            "notification_type": "match.result",
        }
    )
    assert other != as_sent


def test_demo_preferences_are_valid_and_wire_the_channels_promised():
    users = demo_users()
    assert len(users) == 64 and set(WEBHOOK_USERS) | set(DISCORD_USERS) | {DIGEST_USER} <= set(users)
    for user in users:
        prefs = Preferences.model_validate(
            preferences(user, f"http://127.0.0.1:1/api/webhooks/{user}/t" if user in DISCORD_USERS else None)
        )
        assert prefs.contact.email == f"{user}@players.example"
        result = set(prefs.types.get("match.result", ["in_app", "email"]))
        assert ("discord" in result) == (user in DISCORD_USERS)
        assert ("webhook" in result) == (user in WEBHOOK_USERS)
        assert prefs.digest.enabled == (user == DIGEST_USER)
