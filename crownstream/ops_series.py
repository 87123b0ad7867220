"""``crownstream standings rebuild`` for series stages: round-robin groups, Swiss stages and brackets recomputed
from the tournament's events by the pure engine, as the series agent folds them, to compare with what the workers
serve at ``/tournaments/{t}/groups/{stage}``.

Each series is folded from its games, staff overrides and forfeits by the ``Series`` aggregate (its format from the
stage's rules: the group's best-of, the Swiss round's pairing, the bracket slot); a Swiss stage takes its rounds from
the ``round.paired`` records in the topic (the pipeline's own announcements and staff's), so a recompute pairs
nothing itself: it checks the announced facts and the ranking they give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from crownstream.schemas.codec import validate
from crownstream.standings.brackets import Bracket, bracket_from_rules
from crownstream.standings.groups import GroupPointsRule, recompute_group
from crownstream.standings.series import Forfeit, GameOverride, GameResult, Series, SeriesFormat, SeriesResult
from crownstream.standings.swiss import Pairing, Round, SwissStage
from crownstream.standings.swiss import rules_from_dict as swiss_rules_from_dict

SERIES_FORMATS = ("series_group", "swiss", "bracket")


@dataclass
class SeriesStageRecompute:
    stage_id: str
    format: str
    rows: list[dict[str, Any]]  # the standings rows, as the worker's route serves them (without team names)
    series: int
    skipped: list[str] = field(default_factory=list)


def recompute_series_stages(events: list[dict[str, Any]], tournament_id: str) -> dict[str, SeriesStageRecompute]:
    """Every series-group, Swiss and bracket stage of the tournament from ``events`` (raw, in topic order)."""
    rules: dict[str, dict[str, Any]] = {}
    rounds: dict[str, dict[int, Round]] = {}
    facts: dict[str, list[tuple[str, str, tuple[str, str] | None, Any]]] = {}  # stage -> (series, kind, teams, fact)
    skipped: list[str] = []
    for raw in events:
        if raw.get("tournament_id") != tournament_id:
            continue
        try:
            e: Any = validate(raw)  # one of the event models: narrowed by its type below
        except (ValidationError, ValueError) as exc:
            skipped.append(f"{raw.get('event_id')}: {str(exc).splitlines()[0]}")
            continue
        if e.type == "stage.configured" and e.rules.format in SERIES_FORMATS:
            rules[e.stage_id] = e.rules.model_dump(mode="json")
        elif e.type == "round.paired":
            held = rounds.setdefault(e.stage_id, {})
            pairings = tuple(Pairing(p.series_id, p.team_a, p.team_b, p.best_of) for p in e.pairings)
            if e.source == "staff" or e.round not in held:  # as the agent: staff replace, generated never do
                held[e.round] = Round(e.round, pairings, e.source)
        elif e.type == "match.completed" and e.result.format == "series_game":
            r = e.result
            fact: GameResult | GameOverride | Forfeit = GameResult(
                r.series_id, r.game_number, r.winner_team_id, e.revision, tuple(r.score.items())
            )
            facts.setdefault(e.stage_id, []).append((r.series_id, e.event_id, (r.team_ids[0], r.team_ids[1]), fact))
        elif e.type == "result.overridden" and e.series_id is not None:
            fact = GameOverride(
                e.event_id, e.series_id, e.game_number, e.winner_team_id, e.actor, e.reason, e.occurred_at.isoformat()
            )
            facts.setdefault(e.stage_id, []).append((e.series_id, e.event_id, None, fact))
        elif e.type == "match.forfeited" and e.series_id is not None:
            fact = Forfeit(e.event_id, e.series_id, e.team_id, e.occurred_at.isoformat())
            facts.setdefault(e.stage_id, []).append((e.series_id, e.event_id, None, fact))
    return {
        stage_id: _recompute_stage(stage_id, stage_rules, rounds.get(stage_id, {}), facts.get(stage_id, []), skipped)
        for stage_id, stage_rules in rules.items()
    }


def _recompute_stage(
    stage_id: str,
    rules: dict[str, Any],
    rounds: dict[int, Round],
    facts: list[tuple[str, str, tuple[str, str] | None, Any]],
    skipped: list[str],
) -> SeriesStageRecompute:
    kind = rules["format"]
    swiss: SwissStage | None = None
    bracket: Bracket | None = None
    group_rule: GroupPointsRule | None = None
    if kind == "swiss":
        swiss_rules, seeds, prior = swiss_rules_from_dict(rules)
        swiss = SwissStage(stage_id, seeds, swiss_rules, prior)
        swiss.rounds.update(rounds)
    elif kind == "bracket":
        bracket = bracket_from_rules(stage_id, rules)
    else:
        group_rule = GroupPointsRule.from_dict(rules)

    def best_of(series_id: str) -> int:
        if group_rule is not None:
            return group_rule.best_of
        if swiss is not None:
            return swiss.best_of(series_id)
        assert bracket is not None
        return bracket.best_of(series_id)

    series: dict[str, Series] = {}
    skipped = list(skipped)
    for series_id, event_id, teams, fact in facts:
        held = series.get(series_id)
        if held is None:
            if teams is None:
                skipped.append(f"{event_id}: names series {series_id!r} before any game of it")
                continue
            a, b = sorted(teams)
            # Held as a best-of-7, so that no game is refused before the series' own best-of is known (a Swiss
            # round may be paired below); scored with that best-of in result_of.
            held = series[series_id] = Series(series_id, a, b, SeriesFormat(7))
        held.apply(fact)

    def result_of(series_id: str) -> SeriesResult:
        # The facts are the same whatever the format; the score and winner derive from the series' best-of.
        fmt = SeriesFormat(best_of(series_id))
        return Series.from_dict({**series[series_id].to_dict(), "format": fmt.to_dict()}).state().result()

    if swiss is not None:
        _fold_swiss(swiss, series, result_of, skipped)
        return SeriesStageRecompute(stage_id, kind, [r.to_dict() for r in swiss.standings()], len(series), skipped)
    results = [result_of(series_id) for series_id in series]
    if bracket is not None:
        for result in results:
            try:
                bracket.update(result)
            except ValueError as exc:  # a series of an unknown slot or an unseeded team: the agent refused it too
                skipped.append(str(exc))
        rows = [r.to_dict() for r in bracket.standings()]
    else:
        assert group_rule is not None
        members = sorted({t for r in results for t in (r.team_a, r.team_b)})
        group_rows = recompute_group(members, results, group_rule, stage_id) if len(members) > 1 else ()
        rows = [r.to_dict() for r in group_rows]
    return SeriesStageRecompute(stage_id, kind, rows, len(series), skipped)


def _fold_swiss(
    swiss: SwissStage,
    series: dict[str, Series],
    result_of: Callable[[str], SeriesResult],
    skipped: list[str],
) -> None:
    """Fold a Swiss stage's series round by round, pairing a round the topic does not hold yet as the pipeline
    does: its announcement commits with the transaction that completed the round before, so a rebuild that
    reads the topic a moment after the workers applied the next round's games would otherwise score them with
    the wrong best-of."""
    folded: set[str] = set()

    def fold(series_id: str) -> None:
        folded.add(series_id)
        try:
            swiss.update(result_of(series_id))
        except ValueError as exc:  # a series of an unseeded team: the agent refused it too
            skipped.append(str(exc))

    while True:
        for number in sorted(swiss.rounds):
            for pairing in swiss.rounds[number].pairings:
                if pairing.series_id in series and pairing.series_id not in folded:
                    fold(pairing.series_id)
        upcoming = swiss.next_round()
        if upcoming is None:
            break
        swiss.rounds[upcoming.number] = upcoming
    for series_id in series:
        if series_id not in folded:
            fold(series_id)


def compare_series(expected: SeriesStageRecompute, served: list[dict[str, Any]] | None) -> list[str]:
    """Differences between a recompute and the standings a worker serves (rank and team, row by row)."""
    if served is None:
        return ["the worker has no standings for this stage"]
    want = [(r["rank"], r["team_id"]) for r in expected.rows]
    got = [(r.get("rank"), r.get("team_id")) for r in served]
    problems = [
        f"row {i}: recompute #{w[0]} {w[1]}, worker #{g[0]} {g[1]}"
        for i, (w, g) in enumerate(zip(want, got, strict=False), start=1)
        if w != g
    ]
    if len(want) != len(got):
        problems.append(f"recompute has {len(want)} teams, the worker {len(got)}")
    return problems
