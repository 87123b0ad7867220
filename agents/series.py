"""Series agent: folds series games, staff overrides of games and series forfeits into series and group standings.

Persistent state lives in Faust tables co-partitioned with the tournament topic (key = tournament first):
  ``series``        "tournament/series" -> the series' *facts*: teams, stage, every game revision held, overrides,
                    forfeits (``standings.series.Series.to_dict``); score, winner and status are derived on read
  ``group-series``  "tournament/stage" -> the ids of the stage's series and their teams (the group's membership)
  ``stage-rounds``  "tournament/stage" -> a Swiss stage's announced rounds (pairings are facts once announced)
An event costs one read and one write of its own series (a handful of games) plus, when the series outcome
changed, a re-rank of its group — bounded by the group's size, never by the tournament's.

The group's ranked view is an in-memory ``GroupStandings`` per stage (``SwissStage`` for a Swiss stage, ``Bracket``
for an elimination stage), rebuilt from the tables on first use after a rebalance: derived state, never the source
of truth. A Swiss stage's next round is paired when the round before completes and announced as ``round.paired``; a
bracket stage is announced as ``bracket.ready`` when it is seeded (both into the tournament-events topic, in the
input's transaction, where the notification handlers tell the teams).

Duplicates, replays and stale revisions are recognised by the pure ``Series`` aggregate (keyed by game number +
revision and by event id) and change nothing, so a replay after a crash cannot double-count. ranking.changed ids
derive from the triggering event, so a replay re-sends byte-identical records inside the input partition's
transaction (crownstream/engine/transactions.py).
"""

from __future__ import annotations

import logging
from typing import Any

from faust.streams import current_event

from crownstream.agents.decoding import send_to_dead_letter
from crownstream.agents.derived import DerivedViews
from crownstream.agents.standings import derived_id, emit, emit_encoded, stage_key, stages
from crownstream.agents.tournament_events import (
    FORGET_ON_ERROR,
    Stage,
    already_applied,
    handles,
    tournament_events_topic,
)
from crownstream.app import app
from crownstream.engine import after_batch
from crownstream.schemas import events as ev
from crownstream.schemas.codec import Rejection, encode
from crownstream.standings import live
from crownstream.standings.brackets import Bracket, bracket_from_rules
from crownstream.standings.groups import GroupPointsRule, GroupStandings
from crownstream.standings.series import ChangeStatus, Forfeit, GameOverride, GameResult, Series, SeriesFormat
from crownstream.standings.swiss import Pairing, Round, SwissStage
from crownstream.standings.swiss import rules_from_dict as swiss_rules_from_dict
from crownstream.streams.topics import TOURNAMENT_EVENTS

log = logging.getLogger(__name__)
PARTITIONS = TOURNAMENT_EVENTS.partition_count()

series_table = app.Table("series", default=None, partitions=PARTITIONS, help="tournament/series -> series facts")
group_series = app.Table(
    "group-series",
    default=None,
    partitions=PARTITIONS,
    help="tournament/stage -> series ids and teams of a series stage",
)

stage_rounds = app.Table(
    "stage-rounds", default=None, partitions=PARTITIONS, help="tournament/stage -> a Swiss stage's announced rounds"
)

# Each group stage's table, rebuilt from the tables on first use (agents/derived.py: the agent's copy, or a view's).
GROUPS: DerivedViews[GroupStandings] = DerivedViews()
SWISS: DerivedViews[SwissStage] = DerivedViews()
BRACKETS: DerivedViews[Bracket] = DerivedViews()


@app.on_partitions_revoked.connect
async def _forget_groups(sender, revoked, **kwargs) -> None:
    # A group view is a cache of table state that may have moved or been updated by standby replication.
    for views in (GROUPS, SWISS, BRACKETS):
        views.clear()


def _forget_group(event: ev.Envelope) -> None:
    stage_id = getattr(event, "stage_id", None)
    if stage_id is not None:
        for views in (GROUPS, SWISS, BRACKETS):
            views.pop(stage_key(event.tournament_id, stage_id), None)


FORGET_ON_ERROR.append(_forget_group)


def series_key(tournament_id: str, series_id: str) -> str:
    return f"{tournament_id}/{series_id}"


def stage_format(
    tournament_id: str, stage_id: str, series_id: str | None = None
) -> tuple[SeriesFormat, GroupPointsRule | None]:
    """The series format of a stage's series and, for a configured series group, its points rule.

    A Swiss series is the best-of its round's pairing gave it, an elimination series its slot's. A game can arrive
    before its stage is configured; it is then stored and scored as a best-of-3 until the configuration arrives (the
    facts are re-derived with the configured format on every read)."""
    key = stage_key(tournament_id, stage_id)
    record = stages.get(key)
    kind = record.get("format") if record and record.get("rules") else None
    if kind == "series_group":
        rule = GroupPointsRule.from_dict(record["rules"])
        return rule.format, rule
    if kind == "swiss":
        for round_ in (stage_rounds.get(key) or {}).get("rounds", ()):
            for pairing in round_["pairings"]:
                if pairing["series_id"] == series_id:
                    return SeriesFormat(pairing["best_of"]), None
        return SeriesFormat(record["rules"].get("ordinary_best_of", 1)), None
    if kind == "bracket":
        bracket = bracket_for(tournament_id, stage_id)
        if bracket is None or series_id is None:
            return SeriesFormat(), None
        return SeriesFormat(bracket.best_of(series_id)), None
    return SeriesFormat(), None


def load_series(tournament_id: str, series_id: str) -> tuple[Series | None, dict[str, Any] | None]:
    stored = series_table.get(series_key(tournament_id, series_id))
    if stored is None:
        return None, None
    fmt, _ = stage_format(tournament_id, stored["stage_id"], series_id)
    return Series.from_dict({**stored["series"], "format": fmt.to_dict()}), stored


def _stage_results(tournament_id: str, stage_id: str):
    for series_id in (group_series.get(stage_key(tournament_id, stage_id)) or {"series": []})["series"]:
        series, _ = load_series(tournament_id, series_id)
        if series is not None:
            yield series.state().result()


def _configured(views: DerivedViews[Any], tournament_id: str, stage_id: str, kind: str) -> tuple[Any, Any]:
    """(the cached view, None) or (None, the stage's record when it is a configured stage of ``kind``)."""
    key = stage_key(tournament_id, stage_id)
    cached = views.get(key)
    if cached is not None:
        return cached, None
    record = stages.get(key)
    return None, record if record and record.get("format") == kind else None


def swiss_for(tournament_id: str, stage_id: str) -> SwissStage | None:
    """The Swiss stage rebuilt from the tables if not cached; None unless a configured Swiss stage."""
    cached, record = _configured(SWISS, tournament_id, stage_id, "swiss")
    if record is None:
        return cached
    key = stage_key(tournament_id, stage_id)
    rules, seeds, prior = swiss_rules_from_dict(record["rules"])
    stage = SwissStage(stage_id, seeds, rules, prior)
    for raw in (stage_rounds.get(key) or {}).get("rounds", ()):
        round_ = Round.from_dict(raw)
        stage.rounds[round_.number] = round_  # as stored: the announced rounds are the facts
    for result in _stage_results(tournament_id, stage_id):
        stage.update(result)
    SWISS[key] = stage
    return stage


def bracket_for(tournament_id: str, stage_id: str) -> Bracket | None:
    """The elimination stage rebuilt from the tables if not cached; None unless a configured bracket stage."""
    cached, record = _configured(BRACKETS, tournament_id, stage_id, "bracket")
    if record is None:
        return cached
    bracket = bracket_from_rules(stage_id, record["rules"])
    BRACKETS[stage_key(tournament_id, stage_id)] = bracket  # before the results: their formats are read from its slots
    for result in _stage_results(tournament_id, stage_id):
        bracket.update(result)
    return bracket


def _wake_live(tournament_id: str, stage_id: str) -> None:
    """Wake the stage's live leaderboard pages (standings/live.py) once the batch's writes are where they read."""
    after_batch(("live", tournament_id, stage_id), lambda: live.publish(tournament_id, stage_id))


async def emit_tournament_events(*events: ev.Envelope) -> None:
    """Announcements the pipeline makes about a tournament (``round.paired``, ``bracket.ready``): into the
    tournament-events topic, in the input partition's transaction, where the notification handlers read them as
    they read a platform's."""
    if events:
        records = [(e.type, encode(e)) for e in events]
        await emit_encoded(events[0].tournament_id, records, tournament_events_topic, TOURNAMENT_EVENTS)


def group_for(tournament_id: str, stage_id: str) -> GroupStandings | None:
    """The stage's group standings, rebuilt from the tables if not cached; None unless a configured series group."""
    key = stage_key(tournament_id, stage_id)
    cached = GROUPS.get(key)
    if cached is not None:
        return cached
    _, rule = stage_format(tournament_id, stage_id)
    membership = group_series.get(key)
    if rule is None or not membership or not membership["teams"]:
        return None
    group = GroupStandings(stage_id, tuple(sorted(membership["teams"])), rule)
    for series_id in membership["series"]:
        series, _ = load_series(tournament_id, series_id)
        if series is not None:
            group.update(series.state().result())
    GROUPS[key] = group
    return group


async def _reject(event: ev.Envelope, reason: str) -> None:
    """A fact that can never be valid for its series (a game number past best-of-N, a team that does not play
    it): kept byte for byte in the dead-letter topic with the reason, and processing goes on."""
    log.warning("rejected series event", extra={"event_id": event.event_id, "reason": reason})
    record = current_event()
    if record is not None:
        await send_to_dead_letter(
            record, Rejection("rejected", reason, event.type, event.event_id), "tournament-events"
        )


async def _fold(event: ev.Envelope, stage_id: str, series_id: str, teams: tuple[str, str] | None, fact) -> object:
    tournament_id = event.tournament_id
    series, stored = load_series(tournament_id, series_id)
    if series is None:
        if teams is None:
            # An override or forfeit that names a series no game has reported yet: the teams are unknown, so it
            # cannot be checked; refusing it loudly beats guessing the series' teams.
            await _reject(
                event,
                f"series {series_id!r} has no reported game yet, so its teams are unknown; send "
                "the game results first, then the override or forfeit",
            )
            return
        fmt, _ = stage_format(tournament_id, stage_id, series_id)
        # Sorted, so the same games in any order make the same series (team_a/team_b never depend on arrival).
        a, b = sorted(teams)
        series = Series(series_id, a, b, fmt)
        stored = {"tournament_id": tournament_id, "stage_id": stage_id}
    elif stored["stage_id"] != stage_id:
        await _reject(event, f"series {series_id!r} belongs to stage {stored['stage_id']!r}, not {stage_id!r}")
        return
    kind = (stages.get(stage_key(tournament_id, stage_id)) or {}).get("format")
    if kind in ("swiss", "bracket"):
        problem = _progression_problem(tournament_id, stage_id, kind, series_id, series.teams)
        if problem:
            await _reject(event, problem)
            return
        ranks_before = _progression_ranks(tournament_id, stage_id, kind)
    group_before = group_for(tournament_id, stage_id)
    change = series.apply(fact)
    if change.status in (ChangeStatus.DUPLICATE, ChangeStatus.STALE):
        return already_applied(event)
    if change.status == ChangeStatus.REJECTED:
        await _reject(event, change.reason)
        return
    if change.status == ChangeStatus.CONFLICT:
        log.warning("conflicting series fact", extra={"event_id": event.event_id, "reason": change.reason})
    series_table[series_key(tournament_id, series_id)] = {**stored, "series": series.to_dict()}

    key = stage_key(tournament_id, stage_id)
    membership = group_series.get(key) or {"series": [], "teams": []}
    if series_id not in membership["series"]:
        group_series[key] = {
            "series": [*membership["series"], series_id],
            "teams": sorted({*membership["teams"], *series.teams}),
        }
    if not change.result_changed:
        return
    _wake_live(tournament_id, stage_id)
    if kind in ("swiss", "bracket"):
        await _progress(event, tournament_id, stage_id, kind, ranks_before)
        return
    if group_before is not None and set(series.teams) <= set(group_before.teams):
        group_change = group_before.update(change.state.result())
        moves = [(rc.team_id, rc.old_rank, rc.new_rank) for rc in group_change.rank_changes]
        group = group_before
    else:
        # A team joins the group (or the group is first seen): rebuild it from the tables with the new membership.
        before = {row.team_id: row.rank for row in group_before.standings()} if group_before else {}
        GROUPS.pop(key, None)
        group = group_for(tournament_id, stage_id)
        if group is None:
            return  # not a configured series group: the series stands alone
        moves = [
            (row.team_id, before.get(row.team_id), row.rank)
            for row in group.standings()
            if before.get(row.team_id) != row.rank and (before or row.played)
        ]
    points = {row.team_id: row.points for row in group.standings()}
    await emit(
        *(
            ev.RankingChanged(
                event_id=derived_id(event.event_id, "group-rank", team_id),
                occurred_at=event.occurred_at,
                tournament_id=tournament_id,
                stage_id=stage_id,
                team_id=team_id,
                old_rank=old_rank,
                new_rank=new_rank,
                points=points[team_id],
            )
            for team_id, old_rank, new_rank in moves
        )
    )


def _progression_problem(
    tournament_id: str, stage_id: str, kind: str, series_id: str, teams: tuple[str, str]
) -> str | None:
    """Why a series cannot belong to a Swiss or bracket stage, or None."""
    if kind == "swiss":
        swiss = swiss_for(tournament_id, stage_id)
        unseeded = [t for t in teams if swiss is None or t not in swiss.seeds]
        if unseeded:
            return f"teams {unseeded} are not seeded in Swiss stage {stage_id!r}; add them to the stage's seeds"
        return None
    bracket = bracket_for(tournament_id, stage_id)
    if bracket is None or bracket.slot_of(series_id) is None:
        slots = [s.id for s in bracket.slots] if bracket is not None else []
        return (
            f"series {series_id!r} is not a match of bracket stage {stage_id!r}: its series ids are "
            f"{stage_id}-<slot> for slots {slots}"
        )
    unseeded = [t for t in teams if t not in bracket.seeds]
    if unseeded:
        return f"teams {unseeded} are not seeded in bracket stage {stage_id!r}"
    return None


def _progression_ranks(tournament_id: str, stage_id: str, kind: str) -> dict[str, tuple[int, int]]:
    """team -> (rank, points) of a Swiss or bracket stage: Swiss points are wins; a bracket ranks placed teams."""
    if kind == "swiss":
        swiss = swiss_for(tournament_id, stage_id)
        return {r.team_id: (r.rank, r.wins) for r in swiss.standings()} if swiss is not None else {}
    bracket = bracket_for(tournament_id, stage_id)
    rows = bracket.standings() if bracket is not None else ()
    return {r.team_id: (r.rank, 0) for r in rows if r.rank is not None}


async def _progress(
    event: ev.Envelope, tournament_id: str, stage_id: str, kind: str, before: dict[str, tuple[int, int]]
) -> None:
    """After a Swiss or bracket series changed: the ranks that moved, and a Swiss stage's next round once the
    current one is complete (stored first: a correction later never re-pairs an announced round)."""
    key = stage_key(tournament_id, stage_id)
    (SWISS if kind == "swiss" else BRACKETS).pop(key, None)
    after = _progression_ranks(tournament_id, stage_id, kind)
    await emit(
        *(
            ev.RankingChanged(
                event_id=derived_id(event.event_id, f"{kind}-rank", team_id),
                occurred_at=event.occurred_at,
                tournament_id=tournament_id,
                stage_id=stage_id,
                team_id=team_id,
                old_rank=before[team_id][0] if team_id in before else None,
                new_rank=rank,
                points=points,
            )
            for team_id, (rank, points) in sorted(after.items())
            if before.get(team_id, (None, None))[0] != rank
        )
    )
    if kind == "swiss":
        swiss = swiss_for(tournament_id, stage_id)
        upcoming = swiss.next_round() if swiss is not None else None
        if upcoming is not None:
            await _announce_round(event, tournament_id, stage_id, upcoming)


async def _announce_round(event: ev.Envelope, tournament_id: str, stage_id: str, round_: Round) -> None:
    key = stage_key(tournament_id, stage_id)
    stored = stage_rounds.get(key) or {"rounds": []}
    stage_rounds[key] = {"rounds": [*stored["rounds"], round_.to_dict()]}
    SWISS.pop(key, None)
    await emit_tournament_events(
        ev.RoundPaired(
            event_id=derived_id(tournament_id, stage_id, "round", str(round_.number)),
            occurred_at=event.occurred_at,
            tournament_id=tournament_id,
            stage_id=stage_id,
            round=round_.number,
            source="generated",
            pairings=[p.to_dict() for p in round_.pairings],
        )
    )


@handles("match.completed", stage=Stage.SERIES)
async def on_series_game(event: ev.MatchCompleted) -> object:
    if event.result.format != "series_game":
        return  # battle royale: agents/standings.py
    r = event.result
    fact = GameResult(r.series_id, r.game_number, r.winner_team_id, event.revision, dict(r.score))
    return await _fold(event, event.stage_id, r.series_id, (r.team_ids[0], r.team_ids[1]), fact)


@handles("result.overridden", stage=Stage.SERIES)
async def on_series_override(event: ev.ResultOverridden) -> object:
    if event.series_id is None:
        return  # battle-royale placement overrides: agents/standings.py
    fact = GameOverride(
        event.event_id,
        event.series_id,
        event.game_number,
        event.winner_team_id,
        event.actor,
        event.reason,
        event.occurred_at.isoformat(),
    )
    return await _fold(event, event.stage_id, event.series_id, None, fact)


@handles("match.forfeited", stage=Stage.SERIES)
async def on_series_forfeit(event: ev.MatchForfeited) -> object:
    if event.series_id is None:
        return  # battle-royale forfeits: agents/standings.py
    fact = Forfeit(event.event_id, event.series_id, event.team_id, event.occurred_at.isoformat())
    return await _fold(event, event.stage_id, event.series_id, None, fact)


@handles("stage.configured", stage=Stage.SERIES)
async def on_stage_configured(event: ev.StageConfigured) -> None:
    # The format (best-of) or points of a group changed: every series of it re-derives; rebuild the view lazily.
    # Runs after agents/standings.py stored the new rules (Stage.SERIES comes after Stage.STANDINGS).
    _forget_group(event)
    _wake_live(event.tournament_id, event.stage_id)
    if event.rules.format == "swiss":
        swiss = swiss_for(event.tournament_id, event.stage_id)
        if swiss is not None and swiss.current_round() == 0:
            first = swiss.next_round()
            if first is not None:
                await _announce_round(event, event.tournament_id, event.stage_id, first)
    elif event.rules.format == "bracket":
        bracket = bracket_for(event.tournament_id, event.stage_id)
        if bracket is not None:
            # The seeded bracket and what can be played now; a new configuration (new seeds) is a new announcement.
            await emit_tournament_events(
                ev.BracketReady(
                    event_id=derived_id(event.event_id, "bracket-ready"),
                    occurred_at=event.occurred_at,
                    tournament_id=event.tournament_id,
                    stage_id=event.stage_id,
                    matches=[
                        ev.BracketMatch(
                            series_id=s.series_id,
                            slot=s.slot.id,
                            team_a=s.team_a,
                            team_b=s.team_b,
                            best_of=s.slot.best_of,
                        )
                        for s in bracket.ready_matches()
                        if s.team_a is not None and s.team_b is not None
                    ],
                )
            )


@handles("round.paired", stage=Stage.SERIES)
async def on_round_paired(event: ev.RoundPaired) -> object:
    """A round announced by the pipeline (already stored when it was generated: nothing to do, the notification
    handler runs next) or set by staff (replaces the round's pairings)."""
    key = stage_key(event.tournament_id, event.stage_id)
    swiss = swiss_for(event.tournament_id, event.stage_id)
    if swiss is None:
        await _reject(event, f"stage {event.stage_id!r} is not a configured Swiss stage; configure it first")
        return None
    round_ = Round(
        event.round,
        tuple(Pairing(p.series_id, p.team_a, p.team_b, p.best_of) for p in event.pairings),
        event.source,
    )
    if event.source == "generated":
        return None  # stored with its announcement, in the transaction that produced this event
    try:
        swiss.set_round(round_)
    except ValueError as exc:
        SWISS.pop(key, None)
        await _reject(event, str(exc))
        return None
    stored = stage_rounds.get(key) or {"rounds": []}
    rounds = [r for r in stored["rounds"] if r["number"] != event.round]
    stage_rounds[key] = {"rounds": sorted([*rounds, round_.to_dict()], key=lambda r: r["number"])}
    SWISS.pop(key, None)
    return None
