"""Standings queries. Any worker answers: a tournament's requests run on the worker that owns its partition
(others forward them once), and during a rebalance the answer is 503 + Retry-After."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from faust.web import Request, Response, View
from pydantic import ValidationError

from crownstream.agents.series import group_for, group_series, load_series, series_table
from crownstream.agents.standings import board_for, stage_key, stages, tournaments
from crownstream.app import app
from crownstream.schemas.codec import describe_errors
from crownstream.schemas.events import ResultOverridden
from crownstream.web.auth import Unauthorized, require_staff
from crownstream.web.responses import routed

MAX_PAGE = 1000


def _error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message}, status=status)


def _pick_stage(view: View, request: Request, tournament_id: str) -> tuple[str | None, Response | None]:
    info = tournaments.get(tournament_id)
    if not info or not info["stages"]:
        return None, _error(view, 404, f"no stages known for tournament {tournament_id!r}")
    stage_id = request.query.get("stage")
    if stage_id is None:
        br = [s for s, meta in info["stages"].items() if meta["format"] == "battle_royale"]
        if len(br) != 1:
            return None, _error(view, 400, f"tournament {tournament_id!r} has stages {sorted(info['stages'])}: "
                                           "choose one with ?stage=")
        stage_id = br[0]
    if stage_id not in info["stages"]:
        return None, _error(view, 404, f"tournament {tournament_id!r} has no stage {stage_id!r}")
    return stage_id, None


def _page(request: Request) -> tuple[int, int]:
    try:
        offset = max(0, int(request.query.get("offset", 0)))
        limit = min(MAX_PAGE, max(1, int(request.query.get("limit", 100))))
    except ValueError:
        raise ValueError("offset and limit must be whole numbers")
    return offset, limit


@app.page("/tournaments/{tournament_id}/stages")
class Stages(View):
    @routed(stages, "tournament_id")
    async def get(self, request: Request, tournament_id: str) -> Response:
        info = tournaments.get(tournament_id)
        if not info:
            return _error(self, 404, f"unknown tournament {tournament_id!r}")
        return self.json({"tournament_id": tournament_id, "stages": info["stages"], "teams": len(info["teams"])})


@app.page("/tournaments/{tournament_id}/standings")
class Standings(View):
    @routed(stages, "tournament_id")
    async def get(self, request: Request, tournament_id: str) -> Response:
        stage_id, error = _pick_stage(self, request, tournament_id)
        if error:
            return error
        try:
            offset, limit = _page(request)
        except ValueError as exc:
            return _error(self, 400, str(exc))
        board = board_for(tournament_id, stage_id)
        if board is None:
            return _error(self, 404, f"stage {stage_id!r} is not a configured battle-royale stage")
        names = (tournaments.get(tournament_id) or {}).get("teams", {})
        only = request.query.get("matches")
        if only:
            rows = board.standings_over(set(only.split(",")))[offset:offset + limit]
            ranked = [(offset + i + 1, s) for i, s in enumerate(rows)]
        else:
            ranked = board.standings(offset, limit)
        return self.json({
            "tournament_id": tournament_id, "stage_id": stage_id, "teams": len(board), "offset": offset,
            "limit": limit, "matches": sorted(r.match_id for r in board.results()) if not only else sorted(set(only.split(","))),
            "champion": board.champion,
            "standings": [{"rank": rank, "team_name": names.get(s.team_id, s.team_id), **s.to_dict()}
                          for rank, s in ranked],
        })



@app.page("/tournaments/{tournament_id}/teams/{team_id}")
class TeamStanding(View):
    @routed(stages, "tournament_id")
    async def get(self, request: Request, tournament_id: str, team_id: str) -> Response:
        stage_id, error = _pick_stage(self, request, tournament_id)
        if error:
            return error
        board = board_for(tournament_id, stage_id)
        standing = board.team(team_id) if board else None
        if standing is None:
            return _error(self, 404, f"team {team_id!r} has no results in stage {stage_id!r}")
        names = (tournaments.get(tournament_id) or {}).get("teams", {})
        return self.json({"tournament_id": tournament_id, "stage_id": stage_id, "rank": board.rank_of(team_id),
                          "team_name": names.get(team_id, team_id), **standing.to_dict(),
                          "matches": [c.to_dict() for c in board.team_matches(team_id)],
                          "overrides": [a.to_dict() for a in board.audit_trail(team_id)]})


_producer = None


async def _event_producer():
    global _producer
    if _producer is None:
        from crownstream.streams.producer import EventProducer

        _producer = EventProducer()
        await _producer.start()
    return _producer


@app.page("/tournaments/{tournament_id}/overrides")
class Overrides(View):
    """Staff override: validated, then produced as a ``result.overridden`` event — never written to a table
    directly, so it is ordered with the results, audited, and replayable like any other event."""

    async def post(self, request: Request, tournament_id: str) -> Response:
        try:
            require_staff(request.headers.get("Authorization"))
        except Unauthorized as exc:
            return _error(self, 401, str(exc))
        try:
            body = await request.json()
        except ValueError:
            return _error(self, 400, "body must be a JSON object")
        if not isinstance(body, dict):
            return _error(self, 400, "body must be a JSON object")
        body = {"event_id": f"override-{uuid.uuid4()}", "occurred_at": datetime.now(timezone.utc).isoformat(),
                **body, "type": "result.overridden", "tournament_id": tournament_id}
        try:
            event = ResultOverridden.model_validate(body)
        except ValidationError as exc:
            return _error(self, 422, describe_errors(exc, "result.overridden"))
        producer = await _event_producer()
        metadata = await producer.send_and_wait(event)
        return self.json({"accepted": True, "event_id": event.event_id, "partition": metadata.partition,
                          "offset": metadata.offset}, status=202)


async def _series_answer(view: View, request: Request, tournament_id: str, series_id: str) -> Response:
    series, stored = load_series(tournament_id, series_id)
    if series is None:
        return _error(view, 404, f"no games of series {series_id!r} known in tournament {tournament_id!r}")
    return view.json({"tournament_id": tournament_id, "stage_id": stored["stage_id"], **series.state().to_dict()})


_routed_series = routed(series_table, "tournament_id")(_series_answer)


@app.page("/series/{series_id}")
class SeriesView(View):
    """A series: score, status, winner, every game (with the revision counted) and the audit trail of staff
    overrides and forfeits. The series lives with its tournament's standings, hence ``?tournament=``."""

    async def get(self, request: Request, series_id: str) -> Response:
        tournament_id = request.query.get("tournament")
        if not tournament_id:
            return _error(self, 400, f"which tournament does series {series_id!r} belong to? "
                                     f"Add ?tournament=<tournament_id> (or use /tournaments/<id>/series/{series_id})")
        return await _routed_series(self, request, tournament_id=tournament_id, series_id=series_id)


@app.page("/tournaments/{tournament_id}/series/{series_id}")
class TournamentSeriesView(View):
    async def get(self, request: Request, tournament_id: str, series_id: str) -> Response:
        return await _routed_series(self, request, tournament_id=tournament_id, series_id=series_id)


@app.page("/tournaments/{tournament_id}/groups/{stage_id}")
class GroupStandingsView(View):
    """Round-robin group standings: W-D-L, game difference, points, and which criterion separated each team
    from the one above it (points, head-to-head, game difference …)."""

    @routed(group_series, "tournament_id")
    async def get(self, request: Request, tournament_id: str, stage_id: str) -> Response:
        record = stages.get(stage_key(tournament_id, stage_id))
        if not record or record.get("format") != "series_group":
            return _error(self, 404, f"tournament {tournament_id!r} has no series-group stage {stage_id!r}")
        group = group_for(tournament_id, stage_id)
        membership = group_series.get(stage_key(tournament_id, stage_id)) or {"series": []}
        names = (tournaments.get(tournament_id) or {}).get("teams", {})
        rows = group.standings() if group is not None else ()
        return self.json({
            "tournament_id": tournament_id, "stage_id": stage_id, "rules": record["rules"],
            "series": sorted(membership["series"]),
            "standings": [{"team_name": names.get(r.team_id, r.team_id), **r.to_dict()} for r in rows],
        })
