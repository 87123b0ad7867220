"""The live leaderboard page: ``/tournaments/{id}/leaderboard?stage=…`` (HTML) and its server-sent events
``/tournaments/{id}/leaderboard/events?stage=…``.

Both run on the worker that owns the tournament, like the JSON standings view, and read the same state
(``board_for`` and the ``tournaments`` table). The page is rendered with the current standings, so it is
useful without JavaScript; the script then opens the event stream, which sends the whole (first page of
the) standings once on connect and again after every change the standings agent publishes (standings/live.py).

A worker that does not own the tournament *proxies* the event stream from the owner rather than redirecting
the browser to it: behind a load balancer or a Kubernetes Service the owner's canonical URL is an internal
address the browser cannot reach, and a cross-origin EventSource would need CORS besides. The proxy is a
byte relay (no parsing): the owner speaks the SSE protocol through aiohttp-sse, the relay only forwards it.
When ownership moves, the owner closes its streams (partitions revoked), the relay's upstream ends, and the
browser reconnects — to whichever worker now owns the tournament.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from aiohttp import web as aioweb
from aiohttp_sse import EventSourceResponse
from faust.web import Request, Response, View
from jinja2 import Environment, PackageLoader, select_autoescape

from crownstream.agents.series import bracket_for, group_for, group_series, swiss_for
from crownstream.agents.standings import board_for, match_count, stage_key, stages, tournaments
from crownstream.app import app
from crownstream.settings import get_settings
from crownstream.standings.live import HUB, StreamClosed
from crownstream.web.auth import PUBLIC, access
from crownstream.web.errors import HttpError
from crownstream.web.pages import json_for_script, new_nonce, page_csp
from crownstream.web.responses import not_ready, routed
from crownstream.web.routing import ROUTED_HEADER, NotReady, owner_of
from crownstream.web.standings import pick_stage

log = logging.getLogger(__name__)

_templates = Environment(
    loader=PackageLoader("crownstream.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


# The table's columns per stage format after rank and team: (heading, row field, CSS class: "points" is the
# one figure that decides the rank, "wide" columns are hidden on phones).
COLUMNS: dict[str, list[dict[str, str]]] = {
    "battle_royale": [
        {"label": "Pts", "key": "total_points", "cls": "points"},
        {"label": "Place pts", "key": "placement_points", "cls": "wide"},
        {"label": "Kills", "key": "kills", "cls": "wide"},
        {"label": "Wins", "key": "wins", "cls": "wide"},
        {"label": "MP", "key": "matches_played", "cls": ""},
    ],
    "series_group": [
        {"label": "Pts", "key": "points", "cls": "points"},
        {"label": "W-L", "key": "series", "cls": ""},
        {"label": "Maps", "key": "maps", "cls": "wide"},
        {"label": "Rounds ±", "key": "round_diff", "cls": "wide"},
    ],
    "swiss": [
        {"label": "W-L", "key": "record", "cls": "points"},
        {"label": "Difficulty", "key": "difficulty", "cls": "wide"},
        {"label": "Status", "key": "status", "cls": ""},
    ],
    "bracket": [
        {"label": "Place", "key": "place", "cls": "points"},
        {"label": "Status", "key": "status", "cls": ""},
    ],
}


def standings_snapshot(tournament_id: str, stage_id: str, limit: int) -> dict[str, Any] | None:
    """The stage's standings as the page shows them; None if the stage has no ranked table (not configured)."""
    info = tournaments.get(tournament_id) or {}
    names = info.get("teams", {})
    stage_meta = info.get("stages", {}).get(stage_id, {})
    snapshot: dict[str, Any] = {
        "tournament_id": tournament_id,
        "stage_id": stage_id,
        "stage_name": stage_meta.get("name") or stage_id,
        "version": HUB.version(tournament_id, stage_id),
    }
    board = board_for(tournament_id, stage_id)
    if board is not None:
        return {
            **snapshot,
            "format": "battle_royale",
            "columns": COLUMNS["battle_royale"],
            "teams": len(board),
            "matches": match_count(tournament_id, stage_id),
            "champion": board.champion,
            "standings": [
                {"rank": rank, "team_name": names.get(s.team_id, s.team_id), **s.to_dict(), "decided_by": rule}
                for rank, rule, s in board.page(0, limit)
            ],
        }
    rows = series_stage_rows(tournament_id, stage_id)
    if rows is None:
        return None
    kind, series, table = rows
    return {
        **snapshot,
        "format": kind,
        "columns": COLUMNS[kind],
        "teams": len(table),
        "matches": series,
        "champion": None,
        "standings": [{"team_name": names.get(r["team_id"], r["team_id"]), **r} for r in table[:limit]],
    }


SERIES_FORMATS = ("series_group", "swiss", "bracket")


def series_stage_format(tournament_id: str, stage_id: str) -> str | None:
    """The stage's format if it is a configured round-robin group, Swiss stage or bracket, else None."""
    kind = (stages.get(stage_key(tournament_id, stage_id)) or {}).get("format")
    return kind if kind in SERIES_FORMATS else None


def series_stage_rows(tournament_id: str, stage_id: str) -> tuple[str, int, list[dict[str, Any]]] | None:
    """(format, series played, rows) of a round-robin group, Swiss stage or bracket; None for any other stage."""
    kind = series_stage_format(tournament_id, stage_id)
    if kind is None:
        return None
    membership = group_series.get(stage_key(tournament_id, stage_id)) or {"series": []}
    if kind == "series_group":
        group = group_for(tournament_id, stage_id)
        table = [
            {**r.to_dict(), "series": f"{r.wins}-{r.losses}", "maps": f"{r.game_wins}-{r.game_losses}"}
            for r in (group.standings() if group is not None else ())
        ]
    elif kind == "swiss":
        swiss = swiss_for(tournament_id, stage_id)
        table = [r.to_dict() for r in (swiss.standings() if swiss is not None else ())]
    else:
        bracket = bracket_for(tournament_id, stage_id)
        table = [{**r.to_dict(), "place": r.place or "–"} for r in (bracket.standings() if bracket is not None else ())]
    return kind, len(membership["series"]), table


@app.page("/tournaments/{tournament_id}/leaderboard")
class LeaderboardPage(View):
    @access(PUBLIC)
    @routed(stages, "tournament_id")
    async def get(self, request: Request, tournament_id: str) -> Response:
        stage_id = pick_stage(request, tournament_id)
        snapshot = standings_snapshot(tournament_id, stage_id, get_settings().leaderboard_rows)
        if snapshot is None:
            raise HttpError(404, f"stage {stage_id!r} is not configured yet; its leaderboard has no ranked table")
        nonce = new_nonce()
        html = _templates.get_template("leaderboard.html").render(
            snapshot=snapshot,
            snapshot_json=json_for_script(snapshot),
            nonce=nonce,
            events_url=f"{request.path}/events?{urlencode({'stage': stage_id})}",
            retry_ms=get_settings().leaderboard_retry_ms,
        )
        # Only this response's own script and style run; the event stream is same-origin (connect-src 'self').
        return self.html(
            html, headers={"Content-Security-Policy": page_csp(nonce, connect_self=True), "Cache-Control": "no-store"}
        )


@app.page("/tournaments/{tournament_id}/leaderboard/events")
class LeaderboardEvents(View):
    @access(PUBLIC)
    async def get(self, request: Request, tournament_id: str) -> Any:
        try:
            owner = owner_of(self.app, stages, tournament_id)
            if not owner.is_self:
                return await _relay(request, owner.url, str(self.app.conf.canonical_url))
        except NotReady as exc:
            return not_ready(self, exc)
        stage_id = pick_stage(request, tournament_id)
        if board_for(tournament_id, stage_id) is None and series_stage_format(tournament_id, stage_id) is None:
            raise HttpError(404, f"stage {stage_id!r} is not configured yet; its leaderboard has no ranked table")
        return await _stream(request, tournament_id, stage_id)


async def _stream(request: Request, tournament_id: str, stage_id: str) -> aioweb.StreamResponse:
    settings = get_settings()
    response = EventSourceResponse(ping_interval=settings.leaderboard_ping_s)
    await response.prepare(request)
    async with HUB.subscribe(tournament_id, stage_id) as subscription, response:
        try:
            # ``retry``: how long the browser's EventSource waits before reconnecting after the stream ends.
            await response.send("connected", event="hello", retry=settings.leaderboard_retry_ms)
            while True:
                snapshot = standings_snapshot(tournament_id, stage_id, settings.leaderboard_rows)
                if snapshot is None:
                    break  # the tables moved away between two changes: the browser reconnects to the new owner
                await response.send(orjson.dumps(snapshot).decode(), event="standings", id=str(snapshot["version"]))
                while await subscription.changed(timeout=settings.leaderboard_ping_s) is None:
                    if not response.is_connected():
                        return response  # the viewer left; aiohttp-sse's pings noticed
        except StreamClosed:
            pass
        except ConnectionResetError:
            return response
    return response


async def _relay(request: Request, owner_url, me: str) -> aioweb.StreamResponse:
    """Forward the event stream of the owner, byte for byte, until either side closes."""
    if ROUTED_HEADER in {k.lower() for k in request.headers}:
        raise NotReady("ownership is moving between workers")
    url = str(owner_url.with_path("")).rstrip("/") + request.path_qs
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
    try:
        upstream_cm = client.stream("GET", url, headers={ROUTED_HEADER: me, "accept": "text/event-stream"})
        try:
            upstream = await upstream_cm.__aenter__()
        except httpx.TransportError as exc:
            raise NotReady(
                f"the worker that owns this tournament ({owner_url}) is unreachable: {exc.__class__.__name__}",
                retry_after=2,
            ) from exc
        try:
            if upstream.status_code != 200:
                body = await upstream.aread()
                response = aioweb.Response(
                    body=body,
                    status=upstream.status_code,
                    content_type=upstream.headers.get("content-type", "application/json").split(";")[0],
                )
                if "retry-after" in upstream.headers:
                    response.headers["Retry-After"] = upstream.headers["retry-after"]
                return response
            response = aioweb.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            await response.prepare(request)
            try:
                async for chunk in upstream.aiter_raw():
                    await response.write(chunk)
            except (httpx.HTTPError, ConnectionResetError, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                log.info("leaderboard relay ended: %s", exc.__class__.__name__)
            return response
        finally:
            await upstream_cm.__aexit__(None, None, None)
    finally:
        await client.aclose()


@app.on_partitions_revoked.connect
async def _close_live_streams(sender, revoked, **kwargs) -> None:
    # Viewers of tournaments this worker may no longer own reconnect and are routed to the new owner.
    closed = HUB.close_all()
    if closed:
        log.info("closed %d live leaderboard streams on rebalance", closed)


@app.on_before_shutdown.connect
async def _end_live_streams(sender, **kwargs) -> None:
    """A worker stopping (SIGTERM) ends the event streams it serves before its web server stops: the server waits
    for every running handler, and a stream runs until its viewer leaves, so a worker with a leaderboard open
    in a browser took aiohttp's whole handler shutdown timeout (60 s) to exit — past the usual grace period
    before a SIGKILL. (A stopping worker's partitions are not revoked through the rebalance signal above.)
    Viewers reconnect to a worker still in the group; relays of this worker's streams end with them."""
    closed = HUB.close_all()
    if closed:
        log.info("shutting down: ended %d live leaderboard streams", closed)
