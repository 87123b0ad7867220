"""Schemathesis against the OpenAPI document a running worker serves: every documented operation fuzzed with
generated (valid and invalid) parameters and bodies, without a credential, with a user token and with the
staff token — and not one server error (``not_a_server_error``). Bounded: a few examples per operation."""

from __future__ import annotations

import collections
import json
import subprocess

import pytest

from crownstream.settings import Settings
from crownstream.web.auth import mint_user_token
from tests.support.services import REPO
from tests.support.sinks import migrate

STAFF_TOKEN = "staff-" + "f" * 40
USER_KEY = "fuzz-user-token-key-" + "k" * 40
ST = str(REPO / ".venv" / "bin" / "st") if (REPO / ".venv" / "bin" / "st").exists() else "st"  # schemathesis' CLI
MAX_EXAMPLES = 8


@pytest.fixture
async def worker(settings, topics, start_worker, database_url):
    await migrate(database_url)
    return start_worker(
        staff_token=STAFF_TOKEN, user_token_key=USER_KEY, database_url=database_url, sink_allow_private_targets=False
    )


def run_schemathesis(worker, tmp_path, name: str, headers: dict[str, str]) -> dict:
    """One `st run` against the served document; its counts from the NDJSON event log."""
    events = tmp_path / f"{name}.ndjson"
    command = [
        ST,
        "run",
        f"{worker.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "12",
        # One worker thread: hypothesis parses lambdas with ast, which CPython 3.11 cannot do in two threads at once.
        # One thread: hypothesis describes strategies with ast.parse, which CPython 3.11 breaks on in two at once.
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--no-shrink",
        "--no-color",
        "--generation-database",
        "none",
        "--generation-allow-x00",
        "true",
        # The live event stream never ends by design (and answers 404 for the unknown tournaments fuzzed here).
        "--exclude-path",
        "/tournaments/{tournament_id}/leaderboard/events",
        # Likewise the feed's live stream (its refusals and bad resume points: tests/integration/test_feed_live.py).
        "--exclude-path",
        "/users/{user_id}/feed/events",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(events),
        *[arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")],
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=str(tmp_path))
    statuses: collections.Counter = collections.Counter()
    server_errors = []
    for line in events.read_text().splitlines():
        for status, request in _responses(json.loads(line)):
            statuses[status] += 1
            if status >= 500:
                server_errors.append((status, request))
    return {
        "exit": done.returncode,
        "output": done.stdout[-4000:] + done.stderr[-2000:],
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "server_errors": server_errors,
    }


def _responses(event, found=None):
    """(status, "METHOD url") of every response recorded anywhere in one NDJSON event."""
    found = [] if found is None else found
    if isinstance(event, dict):
        response, request = event.get("response"), event.get("request")
        if isinstance(response, dict) and isinstance(response.get("status_code"), int):
            req = request if isinstance(request, dict) else {}
            found.append((response["status_code"], f"{req.get('method')} {req.get('uri') or req.get('url')}"))
        for value in event.values():
            if isinstance(value, (dict, list)):
                _responses(value, found)
    elif isinstance(event, list):
        for value in event:
            _responses(value, found)
    return found


def test_no_server_error_for_any_generated_request(worker, tmp_path):
    tokens = Settings(user_token_key=USER_KEY, dev_mode=False)
    runs = {
        "anonymous": {},
        "user": {"Authorization": f"Bearer {mint_user_token('alice', 3600, tokens)}"},
        "staff": {"Authorization": f"Bearer {STAFF_TOKEN}"},
    }
    results = {name: run_schemathesis(worker, tmp_path, name, headers) for name, headers in runs.items()}
    for name, result in results.items():
        print(
            f"schemathesis {name}: {result['requests']} requests, statuses {dict(sorted(result['statuses'].items()))}, "
            f"5xx: {len(result['server_errors'])}, exit {result['exit']}"
        )
    for name, result in results.items():
        assert result["requests"] > 100, f"{name}: too few requests to mean anything\n{result['output']}"
        assert result["server_errors"] == [], f"{name}: {result['server_errors'][:10]}\n{result['output']}"
        assert result["exit"] == 0, f"{name}: schemathesis failed\n{result['output']}"
    # What the runs must have reached: refusals without a credential, and the protected routes' answers with one.
    assert results["anonymous"]["statuses"][401] > 0
    assert sum(n for s, n in results["staff"]["statuses"].items() if 200 <= s < 300) > 0
    log = worker.log_path.read_text(errors="replace")
    assert "unhandled error serving" not in log
    assert STAFF_TOKEN not in log
