"""Standings agent: folds tournament events into battle-royale standings and emits what changed.

Persistent state lives in Faust tables (RocksDB + changelog, co-partitioned with the tournament topic):
  ``stages``      "tournament/stage" -> the stage's rules, prizes, match ids, overrides, DQs, forfeits
  ``br-results``  "tournament/stage/match" -> the current lobby result (highest revision)
  ``br-match-index`` "tournament/stage#n" -> the stage's n-th match id, "tournament/stage#count" -> how many:
                  a new match is two small writes, where a list of every match id in the stage record grew
                  with the tournament and was rewritten on every lobby (records written before keep theirs)
  ``tournaments`` "tournament" -> its stages and team names
So an event costs one small table write, whatever the size of the tournament. The ranked view is an
in-memory ``Leaderboard`` per stage, rebuilt from those tables on first use after every rebalance; it is
derived state, never the source of truth.

Outputs (ranking.changed, standings.finalized, payout.distributed) carry ids and timestamps derived from
the event that caused them, so a replay produces byte-identical records, and they are sent in the input
partition's transaction (crownstream/engine/transactions.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import orjson

from crownstream.agents.derived import DerivedViews
from crownstream.agents.tournament_events import FORGET_ON_ERROR, Stage, already_applied, handles
from crownstream.app import app
from crownstream.engine import after_batch, send_batch
from crownstream.metrics import DUPLICATES, EVENTS_OUT
from crownstream.schemas import events as ev
from crownstream.schemas.codec import encode
from crownstream.settings import get_settings
from crownstream.standings import live
from crownstream.standings.battle_royale import Change, Leaderboard, RankChange, Status
from crownstream.standings.br_inputs import Disqualification, Forfeit, MatchResult, Override
from crownstream.standings.brackets import bracket_from_rules
from crownstream.standings.groups import GroupPointsRule
from crownstream.standings.prizes import split_prizes
from crownstream.standings.rules import RuleSet
from crownstream.standings.swiss import SwissStage
from crownstream.standings.swiss import rules_from_dict as swiss_rules_from_dict
from crownstream.streams.partitioning import partition_for
from crownstream.streams.topics import STANDINGS_EVENTS, TOURNAMENT_EVENTS, TopicSpec
from crownstream.tracing.propagation import outgoing_headers

log = logging.getLogger(__name__)
PARTITIONS = TOURNAMENT_EVENTS.partition_count()

tournaments = app.Table("tournaments", default=None, partitions=PARTITIONS, help="tournament -> stages, team names")
stages = app.Table("stages", default=None, partitions=PARTITIONS, help="tournament/stage -> rules and result index")
br_results = app.Table("br-results", default=None, partitions=PARTITIONS, help="tournament/stage/match -> lobby result")
br_match_index = app.Table(
    "br-match-index", default=None, partitions=PARTITIONS, help="tournament/stage#n -> match id; #count -> how many"
)

standings_topic = app.topic(
    STANDINGS_EVENTS.full_name(),
    key_serializer="raw",
    value_serializer="raw",
    partitions=STANDINGS_EVENTS.partition_count(),
)

# Each stage's leaderboard, rebuilt from the tables on first use (agents/derived.py: the agent's copy, or a view's).
BOARDS: DerivedViews[Leaderboard] = DerivedViews()


@app.on_partitions_revoked.connect
async def _forget_boards(sender, revoked, **kwargs) -> None:
    # A board is a cache of table state; after a rebalance the tables may have moved or been updated by
    # standby replication, so rebuild from them rather than trust memory.
    BOARDS.clear()


def stage_key(tournament_id: str, stage_id: str) -> str:
    return f"{tournament_id}/{stage_id}"


def _forget_board(event: ev.Envelope) -> None:
    stage_id = getattr(event, "stage_id", None)
    if stage_id is not None:
        BOARDS.pop(stage_key(event.tournament_id, stage_id), None)


FORGET_ON_ERROR.append(_forget_board)


def derived_id(*parts: str) -> str:
    """A deterministic event id for an output; hashed when the readable form would exceed 128 chars."""
    readable = ":".join(parts)
    return readable if len(readable) <= 128 else "d-" + hashlib.sha256(readable.encode()).hexdigest()[:40]


def new_stage_record() -> dict[str, Any]:
    return {
        "format": None,
        "name": "",
        "rules": None,
        "prizes": [],
        "matches": [],
        "overrides": [],
        "dqs": [],
        "forfeits": [],
        "finalized": None,
    }


def match_ids(key: str, record: dict[str, Any]) -> list[str]:
    """Every match id of stage ``key`` in arrival order: the list of a stage record written before the index,
    then the index."""
    count = br_match_index.get(f"{key}#count") or 0
    return [*record["matches"], *(br_match_index[f"{key}#{n}"] for n in range(count))]


def match_count(tournament_id: str, stage_id: str) -> int:
    key = stage_key(tournament_id, stage_id)
    record = stages.get(key) or new_stage_record()
    return len(record["matches"]) + (br_match_index.get(f"{key}#count") or 0)


def _index_match(key: str, match_id: str) -> None:
    count = br_match_index.get(f"{key}#count") or 0
    br_match_index[f"{key}#{count}"] = match_id
    br_match_index[f"{key}#count"] = count + 1


def board_for(tournament_id: str, stage_id: str) -> Leaderboard | None:
    """The stage's leaderboard, rebuilt from the tables if not cached; None if not a configured BR stage."""
    key = stage_key(tournament_id, stage_id)
    board = BOARDS.get(key)
    if board is not None:
        return board
    record = stages.get(key)
    if not record or record["format"] != "battle_royale":
        return None
    # Teams only displaced by others are reported within the top ranks only: in a 1000-team stage one lobby
    # shifts most ranks, and reporting every shift would make each event cost the size of the stage.
    top = max(get_settings().ranking_changes_top, max((p["placement"] for p in record["prizes"]), default=0))
    board = Leaderboard(RuleSet.from_dict(record["rules"]), stage_id, displaced_top=top)
    for match_id in match_ids(key, record):
        stored = br_results.get(f"{key}/{match_id}")
        if stored:
            board.apply_result(MatchResult.from_dict(stored))
    for o in record["overrides"]:
        board.apply_override(Override.from_dict(o))
    for d in record["dqs"]:
        board.disqualify(Disqualification.from_dict(d))
    for match_id, team_id in record["forfeits"]:
        board.forfeit(Forfeit(match_id, team_id))
    BOARDS[key] = board
    return board


async def emit(*events: ev.Envelope) -> None:
    """Send an event's outputs (all keyed by one tournament) in the input partition's transaction."""
    if events:
        key = events[0].tournament_id
        assert all(e.tournament_id == key for e in events), "one batch, one key"
        await emit_encoded(key, [(e.type, encode(e)) for e in events])


async def emit_encoded(
    tournament_id: str, records: list[tuple[str, bytes]], to: Any = None, spec: TopicSpec = STANDINGS_EVENTS
) -> None:
    """Send (type, encoded event) outputs of one tournament in the input partition's transaction: to the
    standings-events topic, or to ``to`` (a Faust topic of ``spec``)."""
    if not records:
        return
    out = standings_topic if to is None else to
    topic = out.get_topic_name()
    key = tournament_id.encode()
    headers = outgoing_headers()  # ranking changes continue the trace of the result that caused them
    if app.in_transaction:
        partition = partition_for(tournament_id, spec.partition_count())
        await send_batch(app, topic, partition, [(key, value) for _, value in records], headers)
    else:
        for _, value in records:
            await out.send(key=key, value=value, headers=headers)
    counts: dict[str, int] = {}
    for event_type, _ in records:
        counts[event_type] = counts.get(event_type, 0) + 1
    for event_type, n in counts.items():  # one labelled lookup per type, not per record
        EVENTS_OUT.labels(topic, event_type).inc(n)


def ranking_changed_records(trigger: ev.Envelope, stage_id: str, changes: Iterable[RankChange]) -> list[bytes]:
    """The ``ranking.changed`` outputs of one event, encoded. The first is built and validated by the event
    model, the contract; the others differ from it only in team, ranks, points and derived id — values the
    leaderboard already holds validated — so each is that record's plain form with those fields replaced:
    byte-identical to going through the model (tests/unit/agents/test_standings_outputs.py) at about a seventh
    of the cost, which was ~7.5 µs a change and ~22 changes a lobby."""
    records: list[bytes] = []
    template: dict[str, Any] | None = None
    for rc in changes:
        # Not when points moved but not the rank, or the team left the standings.
        if rc.old_rank == rc.new_rank or rc.new_rank is None:
            continue
        event_id = derived_id(trigger.event_id, "rank", rc.team_id)
        if template is None:
            first = ev.RankingChanged(
                event_id=event_id,
                occurred_at=trigger.occurred_at,
                tournament_id=trigger.tournament_id,
                stage_id=stage_id,
                team_id=rc.team_id,
                old_rank=rc.old_rank,
                new_rank=rc.new_rank,
                points=rc.new_points,
            )
            template = first.model_dump(mode="json")
            records.append(orjson.dumps(template))
            continue
        template["event_id"] = event_id
        template["team_id"] = rc.team_id
        template["old_rank"] = rc.old_rank
        template["new_rank"] = rc.new_rank
        template["points"] = rc.new_points
        records.append(orjson.dumps(template))
    return records


async def emit_rank_changes(trigger: ev.Envelope, stage_id: str, change: Change) -> None:
    # Wake this stage's live leaderboard pages (standings/live.py) once the batch's writes are where they read them.
    tournament_id = trigger.tournament_id
    after_batch(("live", tournament_id, stage_id), lambda: live.publish(tournament_id, stage_id))
    encoded = ranking_changed_records(trigger, stage_id, change.rank_changes)
    await emit_encoded(trigger.tournament_id, [("ranking.changed", value) for value in encoded])


def _update_stage(key: str, mutate) -> dict[str, Any]:
    record = dict(stages.get(key) or new_stage_record())
    mutate(record)
    stages[key] = record
    return record


# --- handlers ---------------------------------------------------------------------------------------------


@handles("stage.configured", stage=Stage.STANDINGS)
async def on_stage_configured(event: ev.StageConfigured) -> None:
    key = stage_key(event.tournament_id, event.stage_id)
    rules = event.rules.model_dump(mode="json")
    # The event contract ran these same checks at the edge; repeated before any write, so that rules the engine
    # cannot use fail here (a handler_error, nothing stored) rather than at every later result of the stage.
    if event.rules.format == "battle_royale":
        RuleSet.from_dict(rules)
    elif event.rules.format == "series_group":
        GroupPointsRule.from_dict(rules)
    elif event.rules.format == "swiss":
        swiss_rules, seeds, prior = swiss_rules_from_dict(rules)
        SwissStage(event.stage_id, seeds, swiss_rules, prior)
    else:
        bracket_from_rules(event.stage_id, rules)
    before = _ranks(board_for(event.tournament_id, event.stage_id))

    def configure(record: dict[str, Any]) -> None:
        record.update(
            format=event.rules.format,
            name=event.name,
            rules=rules,
            prizes=[p.model_dump(mode="json") for p in event.prizes],
        )

    _update_stage(key, configure)
    info = dict(tournaments.get(event.tournament_id) or {"stages": {}, "teams": {}})
    info["stages"] = {**info["stages"], event.stage_id: {"name": event.name, "format": event.rules.format}}
    tournaments[event.tournament_id] = info
    BOARDS.pop(key, None)
    after = board_for(event.tournament_id, event.stage_id)
    if after is not None and before:
        # New rules re-score every result: report the ranks that moved, as for any other change.
        changes = tuple(
            RankChange(t, before.get(t), r, None, s.total_points)
            for r, s in after.standings()
            for t in [s.team_id]
            if before.get(t) != r
        )
        await emit_rank_changes(event, event.stage_id, Change(Status.APPLIED, rank_changes=changes))


def _ranks(board: Leaderboard | None) -> dict[str, int]:
    return {s.team_id: rank for rank, s in board.standings()} if board else {}


@handles("tournament.registered", stage=Stage.STANDINGS)
async def on_registered(event: ev.TournamentRegistered) -> None:
    info = dict(tournaments.get(event.tournament_id) or {"stages": {}, "teams": {}})
    info["teams"] = {**info["teams"], event.team_id: event.team_name}
    tournaments[event.tournament_id] = info


@handles("match.completed", stage=Stage.STANDINGS)
async def on_match_completed(event: ev.MatchCompleted) -> object:
    if event.result.format != "battle_royale":
        return  # series games: agents/series.py
    key = stage_key(event.tournament_id, event.stage_id)
    result_key = f"{key}/{event.match_id}"
    stored = br_results.get(result_key)
    if stored is not None and stored["revision"] >= event.revision:
        return already_applied(event)
    result = MatchResult.from_event(event)
    board = board_for(event.tournament_id, event.stage_id)  # before the write: a rebuild must not see it yet
    br_results[result_key] = result.to_dict()
    if stored is None:
        _index_match(key, event.match_id)
    if board is not None:
        await emit_rank_changes(event, event.stage_id, board.apply_result(result))


@handles("result.overridden", stage=Stage.STANDINGS)
async def on_override(event: ev.ResultOverridden) -> object:
    if event.team_id is None:
        return  # series game overrides: agents/series.py
    key = stage_key(event.tournament_id, event.stage_id)
    override = Override.from_event(event)
    record = stages.get(key) or new_stage_record()
    if any(o["override_id"] == event.event_id for o in record["overrides"]):
        return already_applied(event)
    board = board_for(event.tournament_id, event.stage_id)  # before the write, as above
    _update_stage(key, lambda r: r.update(overrides=[*r["overrides"], override.to_dict()]))
    if board is not None:
        await emit_rank_changes(event, event.stage_id, board.apply_override(override))


@handles("team.disqualified", stage=Stage.STANDINGS)
async def on_disqualified(event: ev.TeamDisqualified) -> object:
    key = stage_key(event.tournament_id, event.stage_id)
    dq = Disqualification.from_event(event)
    record = stages.get(key) or new_stage_record()
    if any(d["disqualification_id"] == event.event_id for d in record["dqs"]):
        return already_applied(event)
    board = board_for(event.tournament_id, event.stage_id)  # before the write, as above
    _update_stage(key, lambda r: r.update(dqs=[*r["dqs"], dq.to_dict()]))
    if board is not None:
        await emit_rank_changes(event, event.stage_id, board.disqualify(dq))


@handles("match.forfeited", stage=Stage.STANDINGS)
async def on_forfeited(event: ev.MatchForfeited) -> object:
    if event.series_id is not None:
        return  # series forfeits: agents/series.py
    key = stage_key(event.tournament_id, event.stage_id)
    pair = [event.match_id, event.team_id]
    record = stages.get(key) or new_stage_record()
    if pair in record["forfeits"]:
        return already_applied(event)
    board = board_for(event.tournament_id, event.stage_id)  # before the write, as above
    _update_stage(key, lambda r: r.update(forfeits=[*r["forfeits"], pair]))
    if board is not None:
        await emit_rank_changes(event, event.stage_id, board.forfeit(Forfeit(event.match_id, event.team_id)))


@handles("tournament.completed", stage=Stage.STANDINGS)
async def on_completed(event: ev.TournamentCompleted) -> object:
    key = stage_key(event.tournament_id, event.stage_id)
    record = stages.get(key)
    if record is None:
        DUPLICATES.labels(event.type).inc()
        log.warning("tournament.completed for an unknown stage", extra={"event_id": event.event_id})
        return None
    if record["finalized"] is not None:
        return already_applied(event)
    board = board_for(event.tournament_id, event.stage_id)
    if board is None:
        return
    placements = [
        ev.FinalPlacement(team_id=s.team_id, placement=rank, points=s.total_points) for rank, s in board.standings()
    ]
    # Marked first: the table write and the sends below commit in one transaction, or not at all.
    _update_stage(key, lambda r: r.update(finalized=event.event_id))
    outputs: list[ev.Envelope] = [
        ev.StandingsFinalized(
            event_id=derived_id(event.tournament_id, event.stage_id, "final"),
            occurred_at=event.occurred_at,
            tournament_id=event.tournament_id,
            stage_id=event.stage_id,
            placements=placements,
        )
    ]
    prizes = {p["placement"]: (p["prize"]["amount_minor"], p["prize"]["currency"]) for p in record["prizes"]}
    for share in split_prizes([(p.placement, p.team_id) for p in placements], prizes):
        # A place held alone keeps the id it always had, so a replay re-sends a byte-identical record.
        parts = (
            (str(share.placement),) if share.tied_with == 1 else (str(share.placement), share.team_id, share.currency)
        )
        outputs.append(
            ev.PayoutDistributed(
                event_id=derived_id(event.tournament_id, event.stage_id, "payout", *parts),
                occurred_at=event.occurred_at,
                tournament_id=event.tournament_id,
                stage_id=event.stage_id,
                team_id=share.team_id,
                placement=share.placement,
                prize={"amount_minor": share.amount_minor, "currency": share.currency},
            )
        )
    await emit(*outputs)
