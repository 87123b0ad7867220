"""One-click unsubscribe against a real worker: the signed link from an email takes that type off email
through a produced preferences.updated event; forged links change nothing."""

from __future__ import annotations

import httpx

from crownstream.notifications.unsubscribe import unsubscribe_key
from crownstream.streams.producer import EventProducer
from crownstream.streams.topics import PREFERENCES
from tests.integration.test_worker import wait_for
from tests.support.kafka_read import read_topic

STAFF = {"Authorization": "Bearer test-token"}
ONE_CLICK = {"List-Unsubscribe": "One-Click"}  # RFC 8058's POST body


def stored_preferences(worker) -> dict | None:
    r = httpx.get(f"{worker.url}/users/alice/preferences", headers=STAFF, timeout=10)
    return r.json()["preferences"] if r.status_code == 200 and not r.json()["defaults"] else None


async def test_signed_link_unsubscribes_one_type_from_email(settings, topics, start_worker):
    worker = start_worker(staff_token="test-token", unsubscribe_secret="link-secret")
    async with EventProducer(settings) as producer:
        await producer.send(
            {
                "type": "preferences.updated",
                "event_id": "prefs-alice-1",
                "schema_version": 1,
                "occurred_at": "2026-11-24T12:00:00Z",
                "user_id": "alice",
                "preferences": {
                    "contact": {"email": "alice@players.example"},
                    "types": {"match.result": ["in_app", "email", "discord"]},
                },
            }
        )
    wait_for(lambda: stored_preferences(worker), timeout=60)
    key = unsubscribe_key("link-secret", "alice", "match.result")
    url = f"{worker.url}/users/alice/unsubscribe"

    page = httpx.get(url, params={"type": "match.result", "key": key}, timeout=10)
    assert page.status_code == 200 and '<form method="post"' in page.text
    forged = httpx.post(
        url,
        params={"type": "match.result", "key": unsubscribe_key("guess", "alice", "match.result")},
        data=ONE_CLICK,
        timeout=10,
    )
    assert forged.status_code == 403
    other_user = httpx.post(
        f"{worker.url}/users/bob/unsubscribe", params={"type": "match.result", "key": key}, data=ONE_CLICK, timeout=10
    )
    assert other_user.status_code == 403
    assert stored_preferences(worker)["types"]["match.result"] == ["in_app", "email", "discord"]  # GET changed nothing

    done = httpx.post(url, params={"type": "match.result", "key": key}, data=ONE_CLICK, timeout=10)
    assert done.status_code == 200, done.text
    prefs = wait_for(
        lambda: (p := stored_preferences(worker)) and "email" not in p["types"]["match.result"] and p, timeout=60
    )
    assert prefs["types"]["match.result"] == ["in_app", "discord"]
    assert prefs["contact"]["email"] == "alice@players.example"

    again = httpx.post(url, params={"type": "match.result", "key": key}, data=ONE_CLICK, timeout=10)
    assert again.status_code == 200
    updates = await read_topic(settings.kafka_bootstrap, PREFERENCES.full_name(settings))
    assert [u["event_id"] for u in updates] == ["prefs-alice-1", f"unsubscribe-{key[:40]}"]
