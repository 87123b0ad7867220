"""The preference matrix, table-driven over every notification type x channel, plus the catalog, the
digest / quiet-hours clock maths (DST) and the delivery requests' determinism."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from crownstream.notifications.catalog import BY_EVENT, CATALOG, TYPES, notice_for
from crownstream.notifications.clock import digest_due, local_instant, next_digest_at, quiet_until
from crownstream.notifications.preferences import InvalidPreferences, Preferences, parse_preferences
from crownstream.notifications.requests import digest_item, digest_request, single_request
from crownstream.notifications.routing import resolve
from crownstream.schemas.codec import validate
from crownstream.schemas.deliveries import CHANNELS, decode_delivery
from crownstream.schemas.examples import example

# The issue's specification, written out independently of the catalog: default channels and criticality.
PERSONAL, FEED = {"in_app", "email"}, {"in_app"}
SPEC = {
    "invite.sent": (PERSONAL, False),
    "invite.accepted": (PERSONAL, False),
    "roster.changed": (FEED, False),
    "tournament.registered": (PERSONAL, False),
    "bracket.ready": (PERSONAL, False),
    "round.paired": (PERSONAL, False),  # a Swiss round's pairing: like a match's time, each one matters
    "match.scheduled": (PERSONAL, False),
    "match.started": (FEED, False),
    "match.result": (PERSONAL, False),
    "match.disputed": (PERSONAL, False),
    "ranking.changed": (FEED, False),
    "sponsor.approved": (PERSONAL, False),
    "promotion.started": (FEED, False),
    "payment.verified": (PERSONAL, True),
    "payment.refunded": (PERSONAL, True),
    "payout.received": (PERSONAL, True),
    "achievement.earned": (PERSONAL, False),
    "tournament.completed": (PERSONAL, False),
    "scheduled": (PERSONAL, False),
    "broadcast": (FEED, False),
}
NON_CRITICAL = sorted(t for t, (_, crit) in SPEC.items() if not crit)
CONTACT = {"email": "ana@example.org", "discord_webhook_url": "https://discord.invalid/api/webhooks/1/x"}
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def outcome(type_name: str, prefs: dict, now: datetime = NOON) -> dict[str, str]:
    """channel -> 'single' | 'digest' | 'deferred' | skip reason."""
    res = resolve(CATALOG[type_name], parse_preferences(prefs), now)
    return {ch: (r.mode if hasattr(r, "mode") else r.reason) for ch, r in res.by_channel().items()}


def test_catalog_matches_the_issue():
    assert {t.name: (set(t.default_channels), t.critical) for t in TYPES} == SPEC


@pytest.mark.parametrize("event_type", sorted(BY_EVENT))
def test_every_type_builds_a_notice_with_an_audience_from_its_example(event_type):
    event = validate(example(event_type))
    notice, target = notice_for(event)
    assert notice.notification_type == BY_EVENT[event_type].name
    assert notice.source_event_id == event.event_id and notice.created_at == event.occurred_at
    assert notice.title and not target.empty


def test_events_nobody_is_told_of_build_nothing():
    assert notice_for(validate(example("stage.configured"))) is None
    assert notice_for(validate(example("preferences.updated"))) is None


# --- the matrix: every type x channel, per scenario --------------------------------------------------------


def expected(type_name: str, channel: str, scenario: str) -> str:
    defaults, critical = SPEC[type_name]
    if scenario == "defaults":
        return "single" if channel in defaults else "not_selected"
    if scenario == "no_contact":
        if channel not in defaults:
            return "not_selected"
        return "no_address" if channel in ("email", "discord") else "single"
    if scenario == "override_discord_webhook":
        chosen = {"discord", "webhook"} | (defaults if critical else set())
        return "single" if channel in chosen else "not_selected"
    if scenario == "override_mute":
        return ("single" if channel in defaults else "not_selected") if critical else "not_selected"
    if scenario == "opt_out_in_app_email":
        if channel not in defaults:
            return "not_selected"
        return "single" if critical or channel not in ("in_app", "email") else "opted_out"
    if scenario == "unsubscribed_email":
        if channel not in defaults:
            return "not_selected"
        return "unsubscribed" if channel == "email" else "single"
    if scenario == "digest_this_type":
        if channel not in defaults:
            return "not_selected"
        return "digest" if channel == "email" and not critical else "single"
    if scenario == "digest_other_type":
        return "single" if channel in defaults else "not_selected"
    if scenario == "quiet_now":
        if channel not in defaults:
            return "not_selected"
        return "deferred" if channel == "email" and not critical else "single"
    if scenario == "quiet_not_now":
        return "single" if channel in defaults else "not_selected"
    raise AssertionError(scenario)


def scenario_prefs(type_name: str, scenario: str) -> dict:
    base = {"contact": CONTACT}
    other = next(t for t in NON_CRITICAL if t != type_name)
    return {
        "defaults": base,
        "no_contact": {},
        "override_discord_webhook": {**base, "types": {type_name: ["discord", "webhook"]}},
        "override_mute": {**base, "types": {type_name: []}},
        "opt_out_in_app_email": {**base, "opt_out_channels": ["in_app", "email"]},
        "unsubscribed_email": {**base, "unsubscribed_channels": ["email"]},
        "digest_this_type": {
            **base,
            "digest": {"enabled": True, "types": [type_name] if type_name in NON_CRITICAL else []},
        },
        "digest_other_type": {**base, "digest": {"enabled": True, "types": [other]}},
        # NOON is 14:00 in Berlin (summer): inside 13:00-15:00, outside 22:00-07:00.
        "quiet_now": {**base, "timezone": "Europe/Berlin", "quiet_hours": {"start": "13:00", "end": "15:00"}},
        "quiet_not_now": {**base, "timezone": "Europe/Berlin", "quiet_hours": {"start": "22:00", "end": "07:00"}},
    }[scenario]


SCENARIOS = [
    "defaults",
    "no_contact",
    "override_discord_webhook",
    "override_mute",
    "opt_out_in_app_email",
    "unsubscribed_email",
    "digest_this_type",
    "digest_other_type",
    "quiet_now",
    "quiet_not_now",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("type_name", sorted(SPEC))
def test_preference_matrix(type_name, scenario):
    got = outcome(type_name, scenario_prefs(type_name, scenario))
    want = {ch: expected(type_name, ch, scenario) for ch in CHANNELS}
    assert got == want


def test_deferred_routes_release_when_quiet_hours_end():
    prefs = parse_preferences(
        {"contact": CONTACT, "timezone": "Europe/Berlin", "quiet_hours": {"start": "13:00", "end": "15:00"}}
    )
    route = next(r for r in resolve(CATALOG["match.result"], prefs, NOON).routes if r.channel == "email")
    assert route.release_at == datetime(2026, 6, 10, 13, 0, tzinfo=UTC)  # 15:00 CEST


def test_critical_type_cannot_be_digested():
    with pytest.raises(InvalidPreferences, match=r"critical types .*payment\.verified"):
        parse_preferences({"digest": {"enabled": True, "types": ["payment.verified"]}})


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ({"timezone": "Mars/Olympus"}, "timezone: Value error, 'Mars/Olympus' is not an IANA timezone"),
        ({"types": {"match.reslut": ["email"]}}, "unknown notification types ['match.reslut']"),
        ({"opt_out_channels": ["sms"]}, "opt_out_channels.0"),
        ({"contact": {"email": "not-an-address"}}, "contact.email"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet hours start and end must differ"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ([1, 2], "preferences are a JSON object, got list"),
    ],
)
def test_invalid_preferences_name_the_field(bad, fragment):
    with pytest.raises(InvalidPreferences) as info:
        parse_preferences(bad)
    assert fragment in str(info.value)


def test_missing_preferences_are_the_defaults():
    assert parse_preferences({}) == Preferences()


# --- clock maths -----------------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    "day, at, utc",
    [
        (date(2026, 3, 28), time(8, 0), datetime(2026, 3, 28, 7, 0)),  # CET, the day before spring forward
        (date(2026, 3, 29), time(8, 0), datetime(2026, 3, 29, 6, 0)),  # CEST from 02:00 that night
        (date(2026, 3, 29), time(2, 30), datetime(2026, 3, 29, 1, 30)),  # 02:30 does not exist: 03:30 CEST
        (date(2026, 10, 25), time(2, 30), datetime(2026, 10, 25, 0, 30)),  # happens twice: the first one
        (date(2026, 10, 25), time(8, 0), datetime(2026, 10, 25, 7, 0)),  # CET again
    ],
)
def test_local_instant_is_dst_safe(day, at, utc):
    assert local_instant(day, at, BERLIN) == utc.replace(tzinfo=UTC)


def test_one_digest_per_local_day_across_spring_forward():
    prefs = parse_preferences(
        {"timezone": "Europe/Berlin", "digest": {"enabled": True, "time": "02:30", "types": ["match.result"]}}
    )
    sent: list[str] = []
    last = None
    now = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)
    while now < datetime(2026, 3, 31, tzinfo=UTC):
        due = digest_due(prefs, now, last)
        if due:
            last = due[0]
            sent.append(due[0])
        now += timedelta(minutes=7)
    assert sent == ["2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30"]


def test_digest_not_before_its_time_and_next_is_tomorrow():
    prefs = parse_preferences({"timezone": "America/New_York", "digest": {"enabled": True, "time": "18:00"}})
    before = datetime(2026, 11, 24, 22, 59, tzinfo=UTC)  # 17:59 EST
    assert digest_due(prefs, before, None) is None
    assert next_digest_at(prefs, before, None) == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    after = before + timedelta(minutes=2)
    assert digest_due(prefs, after, None) == ("2026-11-24", datetime(2026, 11, 24, 23, 0, tzinfo=UTC))
    assert digest_due(prefs, after, "2026-11-24") is None
    assert next_digest_at(prefs, after, "2026-11-24") == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "local, until",
    [
        ("2026-06-10T21:59", None),
        ("2026-06-10T22:00", "2026-06-11T07:00"),
        ("2026-06-11T03:00", "2026-06-11T07:00"),
        ("2026-06-11T07:00", None),
    ],
)
def test_quiet_hours_wrapping_midnight(local, until):
    prefs = parse_preferences({"timezone": "Europe/Berlin", "quiet_hours": {"start": "22:00", "end": "07:00"}})
    now = datetime.fromisoformat(local).replace(tzinfo=BERLIN)
    got = quiet_until(prefs, now)
    local_end = got.astimezone(BERLIN).replace(tzinfo=None).isoformat(timespec="minutes") if got else None
    assert local_end == until


# --- requests --------------------------------------------------------------------------------------------


def test_requests_are_deterministic_and_valid_for_the_sinks():
    event = validate(example("match.completed"))
    prefs = parse_preferences({"contact": CONTACT})
    a = single_request(notice_for(event)[0], "u-1", "email", prefs.contact_for_delivery(), "https://play.example")
    b = single_request(
        notice_for(validate(example("match.completed")))[0],
        "u-1",
        "email",
        prefs.contact_for_delivery(),
        "https://play.example",
    )
    assert a.encode() == b.encode()
    assert decode_delivery(a.encode()) == a
    assert a.created_at == event.occurred_at and a.url.startswith("https://play.example/tournaments/")
    assert (
        len(
            {
                single_request(notice_for(event)[0], u, ch, prefs.contact_for_delivery()).dedup_key
                for u in ("u-1", "u-2")
                for ch in CHANNELS
            }
        )
        == 8
    )


def test_digest_request_folds_items_under_a_per_day_id():
    notice = notice_for(validate(example("match.completed")))[0]
    at = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    req = digest_request(
        "u-1", "email", "2026-11-24", at, [digest_item(notice)] * 2, parse_preferences({}).contact_for_delivery()
    )
    again = digest_request(
        "u-1", "email", "2026-11-24", at, [digest_item(notice)] * 2, parse_preferences({}).contact_for_delivery()
    )
    assert req.kind == "digest" and len(req.items) == 2 and req.dedup_key == again.dedup_key
    assert req.source_event_id == "digest:u-1:2026-11-24" and decode_delivery(req.encode()) == req


@pytest.mark.parametrize("event_type", sorted(BY_EVENT))
def test_template_rendering_is_byte_identical_to_the_validated_model(event_type):
    from crownstream.notifications.requests import RequestTemplate

    notice = notice_for(validate(example(event_type)))[0]
    contact = parse_preferences({"contact": CONTACT, "timezone": "Asia/Tokyo"}).contact_for_delivery()
    for channel in CHANNELS:
        template = RequestTemplate(notice, channel, "https://play.example")
        for user in ("u-1", "user-0000042"):
            rendered = template.render(user, contact.model_dump(mode="json"))
            assert rendered == single_request(notice, user, channel, contact, "https://play.example").encode()
            assert decode_delivery(rendered).user_id == user
