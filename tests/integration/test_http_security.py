"""The HTTP surface of real workers (real broker and PostgreSQL): Faust's own views gone; every route of the
live router documented with its security; every protected route refuses no credential (401) and another
user's token (403) and serves its owner and staff; each kind of malformed request a 4xx, never a 500; the
Authorization header reaches the owner of a forwarded query."""

from __future__ import annotations

import json
import re
import time

import httpx
import orjson
import pytest

from crownstream.settings import Settings
from crownstream.streams.partitioning import partition_for
from crownstream.web.auth import mint_user_token
from tests.support.sinks import migrate
from tests.support.workers import wait_all_ready

STAFF_TOKEN = "staff-" + "s" * 40
USER_KEY = "user-token-key-" + "k" * 40
TOKENS = Settings(user_token_key=USER_KEY, dev_mode=False)
STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}


def user(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_user_token(user_id, 600, TOKENS)}"}


def overrides(database_url: str) -> dict:
    return {
        "staff_token": STAFF_TOKEN,
        "user_token_key": USER_KEY,
        "database_url": database_url,
        "sink_allow_private_targets": True,
        "http_max_ids": 1000,
    }


def unhandled(worker) -> list[str]:
    """Lines of the worker's log where a view raised (the middleware's catch-all): each one a 500."""
    return [
        line for line in worker.log_path.read_text(errors="replace").splitlines() if "unhandled error serving" in line
    ]


@pytest.fixture
async def migrated(database_url):
    await migrate(database_url)  # the ledger and feed tables, before the first request needs them
    return database_url


@pytest.fixture(scope="module")
async def worker(module_start_worker, module_database_url):
    """One worker for the tests that only send it requests (they read or write alice's data the same way, and
    each checks its own answers; a worker of their own each cost a start)."""
    await migrate(module_database_url)
    return module_start_worker(**overrides(module_database_url))


FAUST_PATHS = [
    "/",
    "/table/",
    "/table/notification-preferences/",
    "/table/notification-preferences/alice/",
    "/table/digests/alice/",
    "/router/",
    "/router/notification-preferences/",
    "/graph/",
    "/stats/",
    "/assignment/",
    "/performance/",
    "/router/notification-preferences/alice/",
]


def test_faust_own_views_answer_404(worker):
    with httpx.Client(base_url=worker.url, timeout=10) as client:
        client.put("/users/alice/preferences", headers=STAFF, json={"contact": {"email": "alice@example.org"}})
        for path in FAUST_PATHS:
            for headers in ({}, STAFF):
                r = client.get(path, headers=headers)
                assert r.status_code == 404, (path, r.status_code, r.text[:200])
                assert "alice@example.org" not in r.text
    print(f"Faust paths tried: {len(FAUST_PATHS)}, with and without the staff token: all 404")


def test_live_router_matches_the_served_document(worker):
    with httpx.Client(base_url=worker.url, timeout=10) as client:
        assert client.get("/ops/routes").status_code == 401
        live = {(r["method"].lower(), r["path"]) for r in client.get("/ops/routes", headers=STAFF).json()["routes"]}
        doc = client.get("/openapi.json").json()
    documented = {(m, p): op for p, item in doc["paths"].items() for m, op in item.items() if m != "parameters"}
    assert len(live) > 20
    for method, path in live:
        if method == "head":
            continue  # Faust's HEAD runs the view's guarded GET (or answers 405)
        assert (method, path) in documented, f"{method.upper()} {path} is served but not in /openapi.json"
        assert "security" in documented[(method, path)], f"{method.upper()} {path} has no security requirement"
    assert set(documented) <= live
    assert not [p for _, p in live if p == "/" or p.startswith(("/table", "/router", "/graph"))]


NO_SUCH_DELIVERY = "0" * 64


def _protected_requests(doc: dict, endpoint_id: str) -> list[tuple[str, str, str, dict | None]]:
    """(method, path, policy, json body) for every protected operation of the document, on alice's data."""
    bodies = {
        ("put", "/users/{user_id}/preferences"): {"contact": {"email": "alice@example.org"}},
        ("post", "/users/{user_id}/feed/read"): {"all": True},
        ("post", "/users/{user_id}/feed/seen"): {"all": True},
        ("post", "/users/{user_id}/feed/archive"): {"all": True},
        ("post", "/users/{user_id}/feed/unarchive"): {"all": True},
        ("post", "/users/{user_id}/webhooks"): {"url": "http://127.0.0.1:9/alice-hook"},
        ("post", "/tournaments/{tournament_id}/overrides"): {"stage_id": "s"},  # authorised, then 422
        ("post", "/webhooks/{endpoint_id}/recover"): {"since": "2026-01-01T00:00:00Z"},
        ("put", "/webhooks/{endpoint_id}/rate-limit"): {"per_second": 5},
    }
    values = {
        "user_id": "alice",
        "endpoint_id": endpoint_id,
        "tournament_id": "t-sec",
        "notification_id": "n-sec",
        "delivery_id": NO_SUCH_DELIVERY,
    }
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters" or not op["security"]:
                continue
            policy = "user" if {"userToken": []} in op["security"] else "staff"
            concrete = path.format(**{k: v for k, v in values.items() if "{" + k + "}" in path})
            out.append((method, concrete, policy, bodies.get((method, path))))
    return out


def test_every_protected_route_refuses_others_and_serves_its_owner_and_staff(worker):
    attempts = refused = 0
    with httpx.Client(base_url=worker.url, timeout=30) as client:
        doc = client.get("/openapi.json").json()
        created = client.post(
            "/users/alice/webhooks", headers=user("alice"), json={"url": "http://127.0.0.1:9/alice-hook"}
        )
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["endpoint"]["id"]
        requests = _protected_requests(doc, endpoint_id)
        assert len(requests) >= 12, requests
        for method, path, policy, body in requests:

            def call(headers):
                nonlocal attempts
                attempts += 1
                request = client.build_request(method.upper(), path, headers=headers, json=body)
                response = client.send(request, stream=True)
                # A live stream (the feed's events) never ends: its status and headers are the answer.
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    response.read()
                response.close()
                return response

            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWxpY2U6eA=="}):
                r = call(headers)
                assert r.status_code == 401 and r.json()["error"], (method, path, r.status_code, r.text)
                assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
                refused += 1
            r = call(user("bob"))  # another user's valid token
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert ("alice" not in r.text) if policy == "staff" else ("bob" in r.json()["error"])
            refused += 1
            owner = call(user("alice"))
            if policy == "staff":
                assert owner.status_code == 403, (method, path, owner.status_code)
                refused += 1
            elif NO_SUCH_DELIVERY in path:  # authorised, then "no such delivery"
                assert owner.status_code == 404 and "no delivery" in owner.json()["error"], (path, owner.text)
            else:
                assert owner.status_code < 400, (method, path, owner.status_code, owner.text)
            staff = call(STAFF)
            assert staff.status_code not in (401, 403) and staff.status_code < 500, (method, path, staff.text)
        # A token past its lifetime, and one the platform minted with another key.
        expired = {"Authorization": "Bearer " + _expired_token("alice")}
        assert client.get("/users/alice/feed", headers=expired).status_code == 401
        other_key = mint_user_token("alice", 60, Settings(user_token_key="x" * 40, dev_mode=False))
        assert client.get("/users/alice/feed", headers={"Authorization": f"Bearer {other_key}"}).status_code == 401
        attempts += 2
        refused += 2
    assert unhandled(worker) == []
    print(f"protected operations: {len(requests)}, attempts: {attempts}, refused as expected: {refused}")


def _expired_token(user_id: str) -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now - 600, "exp": now - 300}, USER_KEY, algorithm="HS256")


def _malformed(worker) -> list[tuple[str, httpx.Response]]:
    staff_json = {**STAFF, "Content-Type": "application/json"}
    alice = user("alice")
    deep = "[" * 40 + "]" * 40
    int64 = 2**63
    with httpx.Client(base_url=worker.url, timeout=30) as client:

        def post(path, content, headers=staff_json):
            return client.post(path, content=content, headers=headers)

        return [
            ("deeply nested JSON (40)", post("/users/alice/feed/read", deep)),
            ("deeply nested JSON (100,000)", post("/users/alice/feed/read", "[" * 100_000)),
            (
                "unknown charset",
                post(
                    "/users/alice/feed/read",
                    b'{"all": true}',
                    {**STAFF, "Content-Type": "application/json; charset=klingon-8"},
                ),
            ),
            (
                "charset other than UTF-8",
                post(
                    "/users/alice/feed/read",
                    '{"all": true}'.encode("utf-16"),
                    {**STAFF, "Content-Type": "application/json; charset=utf-16"},
                ),
            ),
            (
                "body not UTF-8",
                client.put(
                    "/users/alice/preferences", content=b'{"contact": {"email": "\xff\xfe@x"}}', headers=staff_json
                ),
            ),
            ("body not JSON", post("/users/alice/feed/read", b"{all: true")),
            ("body not an object", client.put("/users/alice/preferences", content=b"[1]", headers=staff_json)),
            ("empty body", post("/users/alice/feed/read", b"")),
            ("body over http_max_body_bytes", post("/users/alice/feed/read", b"[" + b" " * 1_100_000 + b"]")),
            (
                "Authorization not UTF-8",
                client.get("/users/alice/feed", headers={"Authorization": b"Bearer \xff\xfe\xfd"}),
            ),
            (
                "Authorization latin-1 text",
                client.get("/users/alice/feed", headers={"Authorization": "Bearer café".encode("latin-1")}),
            ),
            (
                "Authorization not UTF-8, staff route",
                client.get("/ops/assignment", headers={"Authorization": b"\xc3\x28"}),
            ),
            ("feed ids beyond int64", post("/users/alice/feed/read", json.dumps({"ids": [int64]}))),
            ("feed ids far beyond int64", post("/users/alice/feed/read", json.dumps({"ids": [10**30]}))),
            ("feed ids booleans", post("/users/alice/feed/read", json.dumps({"ids": [True, False]}))),
            ("feed ids floats", post("/users/alice/feed/read", json.dumps({"ids": [1.5]}))),
            ("feed ids strings", post("/users/alice/feed/read", json.dumps({"ids": ["1"]}))),
            ("32,767 feed ids", post("/users/alice/feed/read", json.dumps({"ids": list(range(1, 32_768))}))),
            ("http_max_ids + 1 feed ids", post("/users/alice/feed/read", json.dumps({"ids": list(range(1, 1002))}))),
            ("feed before beyond int64", client.get("/users/alice/feed", params={"before": str(int64)}, headers=alice)),
            ("feed before not a number", client.get("/users/alice/feed", params={"before": "1e3"}, headers=alice)),
            ("feed limit beyond int64", client.get("/users/alice/feed", params={"limit": "9" * 5000}, headers=alice)),
            ("standings offset not a number", client.get("/tournaments/t/standings", params={"offset": "１"})),
            ("user id of 129 characters", client.get(f"/users/{'a' * 129}/preferences", headers=STAFF)),
            ("user id of 129 characters, feed", client.get(f"/users/{'a' * 129}/feed", headers=STAFF)),
            ("user id with NUL", client.get("/users/a%00b/preferences", headers=STAFF)),
            (
                "user id with NUL, unsubscribe",
                client.get("/users/a%00b/unsubscribe", params={"type": "all", "key": "x"}),
            ),
            ("user id with a control character", client.get("/users/a%1Fb/webhooks", headers=STAFF)),
            ("tournament id with NUL", client.get("/tournaments/t%00/standings")),
            ("endpoint id of 129 characters", client.post(f"/webhooks/{'e' * 129}/rotate", headers=STAFF)),
            ("unsubscribe key not ASCII", client.post("/users/alice/unsubscribe", params={"type": "all", "key": "é"})),
            ("webhook url with NUL", post("/users/alice/webhooks", json.dumps({"url": "http://a\u0000b/"}))),
            (
                "webhook event types unknown",
                post("/users/alice/webhooks", json.dumps({"url": "http://127.0.0.1:9/", "event_types": ["x\u0000"]})),
            ),
        ]


def _error_text(response: httpx.Response) -> str | None:
    """The error a refusal states: JSON ``error``, or the heading of an HTML page (the unsubscribe pages)."""
    if response.headers.get("content-type", "").startswith("text/html"):
        return response.text.partition("<h1>")[2].partition("</h1>")[0] or None
    try:
        return response.json().get("error")
    except ValueError:
        return None


def test_malformed_requests_are_4xx_never_500(worker):
    results = _malformed(worker)
    wrong = [
        (kind, r.status_code, r.headers.get("content-type"), r.text[:200])
        for kind, r in results
        if not 400 <= r.status_code < 500 or r.status_code in (404, 405) or not _error_text(r)
    ]
    assert wrong == []
    assert unhandled(worker) == []
    print(f"malformed kinds: {len(results)}, 4xx: {len(results) - len(wrong)}")
    for kind, r in results:
        print(f"  {r.status_code} {kind}: {_error_text(r)[:100]}")


def test_every_response_carries_nosniff_and_a_policy(worker):
    with httpx.Client(base_url=worker.url, timeout=10) as client:
        for path in (
            "/healthz",
            "/openapi.json",
            "/nowhere",
            "/users/alice/feed",
            "/metrics",
            "/users/alice/unsubscribe?type=all&key=x",
        ):
            r = client.get(path)
            assert r.headers["X-Content-Type-Options"] == "nosniff", path
            assert "default-src 'none'" in r.headers["Content-Security-Policy"], path
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path


async def test_forwarded_queries_carry_the_credential_to_the_owner(settings, topics, start_worker, migrated):
    database_url = migrated
    first, second = wait_all_ready([start_worker(wait=False, **overrides(database_url)) for _ in range(2)])
    users = [f"u{i}" for i in range(12)]
    # Which worker owns each user's preferences partition (from the owners' own view of their assignment).
    actives = {
        w.url: httpx.get(f"{w.url}/ops/assignment", headers=STAFF, timeout=10).json()["actives"]
        for w in (first, second)
    }
    owned_by_second = [
        u
        for u in users
        if any(
            tp.endswith(f"notification-preferences-changelog[{partition_for(u, settings.topic_partitions)}]")
            for tp in actives[second.url]
        )
    ]
    assert owned_by_second, f"no user owned by the second worker; its actives: {actives[second.url]}"
    with httpx.Client(base_url=first.url, timeout=30) as client:
        for u in owned_by_second:
            assert client.get(f"/users/{u}/preferences", headers=user(u)).status_code == 200, u
            assert client.get(f"/users/{u}/preferences", headers=STAFF).status_code == 200, u
            r = client.get(f"/users/{u}/preferences", headers=user("mallory"))
            assert r.status_code == 403, u
            assert client.get(f"/users/{u}/preferences").status_code == 401, u
    # The token never reaches a log line of either worker.
    for w in (first, second):
        text = w.log_path.read_text(errors="replace")
        assert STAFF_TOKEN not in text and USER_KEY not in text
        assert "eyJ" not in text, "a user token (JWT) reached a log line"
        assert unhandled(w) == []
    print(
        f"forwarded users: {len(owned_by_second)} of {len(users)}, 4 requests each (own token, staff, other user, none)"
    )


HOSTILE_TEAM = "</script><script>alert(1)</script><!--"


async def test_leaderboard_page_keeps_a_hostile_team_name_inside_its_data(settings, topics, start_worker):
    """From the owner and from the other worker (which forwards the page, and must pass its policy on)."""
    from tests.integration.test_leaderboard import T, br_events, json_standings, produce, wait_until

    workers = wait_all_ready([start_worker(wait=False), start_worker(wait=False)])
    setup, _ = br_events(1)
    setup = [
        {**e, "team_name": HOSTILE_TEAM} if e["type"] == "tournament.registered" and e["team_id"] == "team-01" else e
        for e in setup
    ]
    await produce(settings, setup)
    for worker in workers:
        wait_until(lambda: json_standings(worker.url), 60, "standings of the first match")
        r = httpx.get(f"{worker.url}/tournaments/{T}/leaderboard", params={"stage": "br-finals"}, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["Content-Security-Policy"]
        nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
        assert "'unsafe-inline'" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        html = r.text
        # Exactly the page's own two script elements; the team name opened or closed none.
        assert html.count("<script") == 2 and html.count("</script") == 2, html.count("<script")
        assert f'<script nonce="{nonce}">' in html and f'<style nonce="{nonce}">' in html
        assert "<!--" not in html.split("<body>")[1]
        data = re.search(r'<script id="snapshot" type="application/json">(.*?)</script>', html, re.S).group(1)
        names = {row["team_id"]: row["team_name"] for row in orjson.loads(data)["standings"]}
        assert names["team-01"] == HOSTILE_TEAM
        assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html  # the rendered table cell, HTML-escaped
        # Every response has a fresh nonce.
        again = httpx.get(f"{worker.url}/tournaments/{T}/leaderboard", params={"stage": "br-finals"}, timeout=10)
        assert again.headers["Content-Security-Policy"] != csp
