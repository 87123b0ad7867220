"""Standings queries. Any worker answers: a tournament's requests run on the worker that owns its partition
(others forward them once), and during a rebalance the answer is 503 + Retry-After."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from faust.web import Request, Response, View
from pydantic import ValidationError

from crownstream.agents.series import bracket_for, group_for, group_series, load_series, series_table, swiss_for
from crownstream.agents.standings import board_for, stage_key, stages, tournaments
from crownstream.app import app
from crownstream.schemas.codec import describe_errors
from crownstream.schemas.events import ResultOverridden
from crownstream.standings.tiebreakers import ranked
from crownstream.web.auth import PUBLIC, STAFF, access
from crownstream.web.errors import HttpError
from crownstream.web.inputs import INT64_MAX, query_int, read_object
from crownstream.web.responses import routed

MAX_PAGE = 1000


def pick_stage(request: Request, tournament_id: str) -> str:
    """The stage a standings request is about: ``?stage=``, or the tournament's only battle-royale stage."""
    info = tournaments.get(tournament_id)
    if not info or not info["stages"]:
        raise HttpError(404, f"no stages known for tournament {tournament_id!r}")
    stage_id = request.query.get("stage")
    if stage_id is None:
        br = [s for s, meta in info["stages"].items() if meta["format"] == "battle_royale"]
        if len(br) != 1:
            raise HttpError(
                400, f"tournament {tournament_id!r} has stages {sorted(info['stages'])}: choose one with ?stage="
            )
        stage_id = br[0]
    if stage_id not in info["stages"]:
        raise HttpError(404, f"tournament {tournament_id!r} has no stage {stage_id[:200]!r}")
    return stage_id


def _page(request: Request) -> tuple[int, int]:
    # Out-of-range paging is clamped as before (offset past the end: an empty page); only non-numbers are 400s.
    offset = query_int(request, "offset", 0, -INT64_MAX, INT64_MAX)
    limit = query_int(request, "limit", 100, -INT64_MAX, INT64_MAX)
    return max(0, offset), min(MAX_PAGE, max(1, limit))


@app.page("/tournaments/{tournament_id}/stages")
class Stages(View):
    @access(PUBLIC)
    @routed(stages, "tournament_id")
    async def get(self, request: Request, tournament_id: str) -> Response:
        info = tournaments.get(tournament_id)
        if not info:
            raise HttpError(404, f"unknown tournament {tournament_id!r}")
        return self.json({"tournament_id": tournament_id, "stages": info["stages"], "teams": len(info["teams"])})


@app.page("/tournaments/{tournament_id}/standings")
class Standings(View):
    @access(PUBLIC)
    @routed(stages, "tournament_id")
    async def get(self, request: Request, tournament_id: str) -> Response:
        offset, limit = _page(request)
        stage_id = pick_stage(request, tournament_id)
        board = board_for(tournament_id, stage_id)
        if board is None:
            raise HttpError(404, f"stage {stage_id!r} is not a configured battle-royale stage")
        names = (tournaments.get(tournament_id) or {}).get("teams", {})
        only = request.query.get("matches")
        if only:
            # Ranked over the whole subset first, so a page that starts inside a tie carries the tie's rank.
            page = ranked(board.standings_over(set(only.split(","))), board.rules.tiebreakers)[offset : offset + limit]
        else:
            page = board.page(offset, limit)
        return self.json(
            {
                "tournament_id": tournament_id,
                "stage_id": stage_id,
                "teams": len(board),
                "offset": offset,
                "limit": limit,
                "matches": sorted(r.match_id for r in board.results()) if not only else sorted(set(only.split(","))),
                "champion": board.champion,
                "standings": [
                    {"rank": rank, "team_name": names.get(s.team_id, s.team_id), **s.to_dict(), "decided_by": rule}
                    for rank, rule, s in page
                ],
            }
        )


@app.page("/tournaments/{tournament_id}/teams/{team_id}")
class TeamStanding(View):
    @access(PUBLIC)
    @routed(stages, "tournament_id")
    async def get(self, request: Request, tournament_id: str, team_id: str) -> Response:
        stage_id = pick_stage(request, tournament_id)
        board = board_for(tournament_id, stage_id)
        standing = board.team(team_id) if board else None
        if standing is None:
            raise HttpError(404, f"team {team_id!r} has no results in stage {stage_id!r}")
        names = (tournaments.get(tournament_id) or {}).get("teams", {})
        return self.json(
            {
                "tournament_id": tournament_id,
                "stage_id": stage_id,
                "rank": board.rank_of(team_id),
                "team_name": names.get(team_id, team_id),
                **standing.to_dict(),
                "matches": [c.to_dict() for c in board.team_matches(team_id)],
                "overrides": [a.to_dict() for a in board.audit_trail(team_id)],
            }
        )


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

    @access(STAFF)
    async def post(self, request: Request, tournament_id: str) -> Response:
        body = await read_object(request, "a result.overridden event without type and tournament_id")
        body = {
            "event_id": f"override-{uuid.uuid4()}",
            "occurred_at": datetime.now(UTC).isoformat(),
            **body,
            "type": "result.overridden",
            "tournament_id": tournament_id,
        }
        try:
            event = ResultOverridden.model_validate(body)
        except ValidationError as exc:
            raise HttpError(422, describe_errors(exc, "result.overridden")) from None
        producer = await _event_producer()
        metadata = await producer.send_and_wait(event)
        return self.json(
            {"accepted": True, "event_id": event.event_id, "partition": metadata.partition, "offset": metadata.offset},
            status=202,
        )


async def _series_answer(view: View, request: Request, tournament_id: str, series_id: str) -> Response:
    series, stored = load_series(tournament_id, series_id)
    if series is None:
        raise HttpError(404, f"no games of series {series_id!r} known in tournament {tournament_id!r}")
    return view.json({"tournament_id": tournament_id, "stage_id": stored["stage_id"], **series.state().to_dict()})


_routed_series = routed(series_table, "tournament_id")(_series_answer)


@app.page("/series/{series_id}")
class SeriesView(View):
    """A series: score, status, winner, every game (with the revision counted) and the audit trail of staff
    overrides and forfeits. The series lives with its tournament's standings, hence ``?tournament=``."""

    @access(PUBLIC)
    async def get(self, request: Request, series_id: str) -> Response:
        tournament_id = request.query.get("tournament")
        if not tournament_id:
            raise HttpError(
                400,
                f"which tournament does series {series_id!r} belong to? "
                f"Add ?tournament=<tournament_id> (or use /tournaments/<id>/series/{series_id})",
            )
        return await _routed_series(self, request, tournament_id=tournament_id, series_id=series_id)


@app.page("/tournaments/{tournament_id}/series/{series_id}")
class TournamentSeriesView(View):
    @access(PUBLIC)
    async def get(self, request: Request, tournament_id: str, series_id: str) -> Response:
        return await _routed_series(self, request, tournament_id=tournament_id, series_id=series_id)


@app.page("/tournaments/{tournament_id}/groups/{stage_id}")
class GroupStandingsView(View):
    """Standings of a series stage: a round-robin group (W-D-L, maps, rounds, points), a Swiss stage (record,
    Buchholz difficulty, rounds and pairings) or a bracket (places, every slot's state), and which criterion
    separated each team from the one above it."""

    @access(PUBLIC)
    @routed(group_series, "tournament_id")
    async def get(self, request: Request, tournament_id: str, stage_id: str) -> Response:
        record = stages.get(stage_key(tournament_id, stage_id))
        kind = record.get("format") if record else None
        if kind not in ("series_group", "swiss", "bracket"):
            raise HttpError(
                404, f"tournament {tournament_id!r} has no series-group, Swiss or bracket stage {stage_id!r}"
            )
        membership = group_series.get(stage_key(tournament_id, stage_id)) or {"series": []}
        names = (tournaments.get(tournament_id) or {}).get("teams", {})
        body: dict[str, object] = {
            "tournament_id": tournament_id,
            "stage_id": stage_id,
            "format": kind,
            "rules": record["rules"],
            "series": sorted(membership["series"]),
        }
        rows: tuple = ()
        if kind == "series_group":
            group = group_for(tournament_id, stage_id)
            rows = group.standings() if group is not None else ()
        elif kind == "swiss":
            swiss = swiss_for(tournament_id, stage_id)
            rows = swiss.standings() if swiss is not None else ()
            body["rounds"] = [swiss.rounds[n].to_dict() for n in sorted(swiss.rounds)] if swiss is not None else []
        else:
            bracket = bracket_for(tournament_id, stage_id)
            rows = bracket.standings() if bracket is not None else ()
            body["matches"] = [s.to_dict() for s in bracket.states()] if bracket is not None else []
        body["standings"] = [{"team_name": names.get(r.team_id, r.team_id), **r.to_dict()} for r in rows]
        return self.json(body)
