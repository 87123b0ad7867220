"""Series agent: folds series games, staff overrides of games and series forfeits into series and group standings.

Persistent state lives in Faust tables co-partitioned with the tournament topic (key = tournament first):
  ``series``        "tournament/series" -> the series' *facts*: teams, stage, every game revision held, overrides,
                    forfeits (``standings.series.Series.to_dict``); score, winner and status are derived on read
  ``group-series``  "tournament/stage" -> the ids of the stage's series and their teams (the group's membership)
An event costs one read and one write of its own series (a handful of games) plus, when the series outcome
changed, a re-rank of its group — bounded by the group's size, never by the tournament's.

The group's ranked view is an in-memory ``GroupStandings`` per stage, rebuilt from the tables on first use after
a rebalance: derived state, never the source of truth. Duplicates, replays and stale revisions are recognised by
the pure ``Series`` aggregate (keyed by game number + revision and by event id) and change nothing, so a replay
after a crash cannot double-count. ranking.changed ids derive from the triggering event, so a replay re-sends
byte-identical records inside the input partition's transaction (crownstream/engine/transactions.py).
"""

from __future__ import annotations

import logging
from typing import Any

from faust.streams import current_event

from crownstream.agents.decoding import send_to_dead_letter
from crownstream.agents.derived import DerivedViews
from crownstream.agents.standings import derived_id, emit, stage_key, stages
from crownstream.agents.tournament_events import FORGET_ON_ERROR, Stage, already_applied, handles
from crownstream.app import app
from crownstream.schemas import events as ev
from crownstream.schemas.codec import Rejection
from crownstream.standings.groups import GroupPointsRule, GroupStandings
from crownstream.standings.series import ChangeStatus, Forfeit, GameOverride, GameResult, Series, SeriesFormat
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

# Each group stage's table, rebuilt from the tables on first use (agents/derived.py: the agent's copy, or a view's).
GROUPS: DerivedViews[GroupStandings] = DerivedViews()


@app.on_partitions_revoked.connect
async def _forget_groups(sender, revoked, **kwargs) -> None:
    # A group view is a cache of table state that may have moved or been updated by standby replication.
    GROUPS.clear()


def _forget_group(event: ev.Envelope) -> None:
    stage_id = getattr(event, "stage_id", None)
    if stage_id is not None:
        GROUPS.pop(stage_key(event.tournament_id, stage_id), None)


FORGET_ON_ERROR.append(_forget_group)


def series_key(tournament_id: str, series_id: str) -> str:
    return f"{tournament_id}/{series_id}"


def stage_format(tournament_id: str, stage_id: str) -> tuple[SeriesFormat, GroupPointsRule | None]:
    """The series format of a stage and, for a configured series group, its points rule.

    A game can arrive before its stage is configured; it is then stored and scored as a best-of-3 until the
    configuration arrives (the facts are re-derived with the configured format on every read)."""
    record = stages.get(stage_key(tournament_id, stage_id))
    if not record or record.get("format") != "series_group" or not record.get("rules"):
        return SeriesFormat(), None
    rule = GroupPointsRule.from_dict(record["rules"])
    return rule.format, rule


def load_series(tournament_id: str, series_id: str) -> tuple[Series | None, dict[str, Any] | None]:
    stored = series_table.get(series_key(tournament_id, series_id))
    if stored is None:
        return None, None
    fmt, _ = stage_format(tournament_id, stored["stage_id"])
    return Series.from_dict({**stored["series"], "format": fmt.to_dict()}), stored


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
        fmt, _ = stage_format(tournament_id, stage_id)
        # Sorted, so the same games in any order make the same series (team_a/team_b never depend on arrival).
        a, b = sorted(teams)
        series = Series(series_id, a, b, fmt)
        stored = {"tournament_id": tournament_id, "stage_id": stage_id}
    elif stored["stage_id"] != stage_id:
        await _reject(event, f"series {series_id!r} belongs to stage {stored['stage_id']!r}, not {stage_id!r}")
        return
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
    GROUPS.pop(stage_key(event.tournament_id, event.stage_id), None)
