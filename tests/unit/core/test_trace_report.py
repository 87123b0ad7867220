"""The pure parts of ``crownstream trace``: the window option, preferences in force at a time, one user's view,
and the text report."""

from __future__ import annotations

import click
import pytest

from crownstream.notifications.preferences import DEFAULTS
from crownstream.trace_cli import parse_window
from crownstream.trace_report import Hop, Suppressed, TraceReport, _preferences_at, render


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30m", 1800), ("24h", 86_400), ("7d", 604_800)])
def test_windows(text, seconds):
    assert parse_window(text) == seconds


def test_all_reads_every_retained_record_and_nonsense_is_refused():
    assert parse_window("all") is None
    with pytest.raises(click.BadParameter, match="not a duration"):
        parse_window("yesterday")


def test_the_preferences_in_force_are_the_last_set_before_the_time():
    history = [(1000, {"opt_out_channels": ["email"]}), (2000, {"opt_out_channels": ["discord"]})]
    assert _preferences_at(history, 500) == (DEFAULTS, None)
    prefs, since = _preferences_at(history, 1500)
    assert prefs.opt_out_channels == ["email"] and since.startswith("1970-01-01T00:00:01")
    assert _preferences_at(history, 2000)[0].opt_out_channels == ["discord"]
    # Preferences the agent refused (dead-lettered) never applied: the ones before them did.
    assert _preferences_at([(1000, {"timezone": "Mars/Olympus"})], 1500) == (DEFAULTS, None)


def hop(topic: str, parent: int | None, what: str, delivery: dict | None = None) -> Hop:
    return Hop(topic, 0, 1, 1_000, "k", what, None, None, parent, delivery)


def delivery(user: str, state: str) -> dict:
    return {
        "dedup_key": f"key-{user}",
        "channel": "in_app",
        "user_id": user,
        "notification_type": "match.result",
        "kind": "single",
        "source_event_id": "e1",
        "ledger": [{"target": "", "state": state, "attempts": 1, "sent_at": "t", "last_error": None}],
    }


REPORT = TraceReport(
    "e1",
    "a" * 32,
    True,
    [
        hop("p.tournament-events", None, "match.completed"),
        hop("p.audiences", 0, "resolve"),
        hop("p.users", 1, "notify 2 users"),
        hop("p.deliveries.in-app", 2, "in_app to ada", delivery("ada", "sent")),
        hop("p.deliveries.in-app", 2, "in_app to bob", delivery("bob", "dead")),
        hop("p.standings-events", 0, "ranking.changed"),
    ],
    [Suppressed("bob", "email", "match.result", "opted_out", "the user opted out of this channel (…)", 2)],
    short_names={"p.tournament-events": "crownstream.tournament-events"},
)


def test_one_users_view_keeps_their_deliveries_suppressions_and_the_way_there():
    bob = REPORT.for_user("bob")
    assert [h.what for h in bob.hops] == ["match.completed", "resolve", "notify 2 users", "in_app to bob"]
    assert [h.parent for h in bob.hops] == [None, 0, 1, 2]
    assert bob.suppressed[0].notify_hop == 2
    nobody = REPORT.for_user("carol")
    assert [h.what for h in nobody.hops] == ["match.completed"] and not nobody.suppressed


def test_the_text_report_nests_each_record_under_what_wrote_it():
    lines = render(REPORT).splitlines()
    assert lines[0] == f"trace {'a' * 32} of event e1"
    assert lines[1].startswith("  crownstream.tournament-events[0]@1  1970-01-01T00:00:01.000Z  match.completed")
    assert lines[2].startswith("    p.audiences[0]@1  +0.000s  resolve")
    assert "        email to bob: suppressed, opted_out: the user opted out of this channel (…)" in lines
    assert any(line.startswith("        p.deliveries.in-app") and "in_app to bob" in line for line in lines)
    assert lines[-1] == (
        "  6 records, 2 delivery requests (1 dead, 1 sent), 1 held or suppressed by preference, 0 dead-lettered"
    )
