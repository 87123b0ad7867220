"""HTML pages: JSON embedded in a script element cannot end or confuse it; the policies the pages send."""

from __future__ import annotations

import re

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape

from crownstream.web.leaderboard import COLUMNS
from crownstream.web.pages import json_for_script, page_csp

HOSTILE = ["</script><script>alert(1)</script>", "<!--", "<script>", "]]>", "&lt;", "a\u2028b\u2029c", "</SCRIPT >"]


def test_embedded_json_has_no_markup_and_round_trips():
    value = {"standings": [{"team_name": name, "rank": i} for i, name in enumerate(HOSTILE)]}
    text = json_for_script(value)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert orjson.loads(text) == value


def test_leaderboard_template_keeps_a_hostile_team_name_inside_the_data():
    env = Environment(loader=PackageLoader("crownstream.web", "templates"), autoescape=select_autoescape(["html"]))
    snapshot = {
        "tournament_id": "t1",
        "stage_id": "s1",
        "stage_name": "<b>Finals</b>",
        "teams": 1,
        "matches": 0,
        "champion": None,
        "version": 3,
        "columns": COLUMNS["battle_royale"],
        "standings": [
            {
                "rank": 1,
                "team_id": "x",
                "team_name": HOSTILE[0],
                "total_points": 1,
                "placement_points": 1,
                "kills": 0,
                "wins": 0,
                "matches_played": 1,
                "champion": False,
                "disqualified": False,
            }
        ],
    }
    html = env.get_template("leaderboard.html").render(
        snapshot=snapshot,
        snapshot_json=json_for_script(snapshot),
        nonce="n0nce",
        events_url="/e?stage=s1",
        retry_ms=1000,
    )
    # Exactly the page's two scripts: the data and the nonce'd code; the team name started none.
    assert html.count("<script") == 2 and html.lower().count("</script") == 2
    assert '<script nonce="n0nce">' in html and '<style nonce="n0nce">' in html
    data = re.search(r'<script id="snapshot" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert orjson.loads(data) == snapshot
    assert "<b>Finals</b>" not in html  # the server-rendered parts are HTML-escaped


def test_page_policies():
    lb = page_csp("abc", connect_self=True)
    assert "script-src 'nonce-abc'" in lb and "'unsafe-inline'" not in lb and "connect-src 'self'" in lb
    assert "default-src 'none'" in lb and "frame-ancestors 'none'" in lb and "form-action 'none'" in lb
    unsub = page_csp(inline_style_attrs=True, form_self=True)
    assert "script-src 'none'" in unsub and "form-action 'self'" in unsub and "style-src 'unsafe-inline'" in unsub
