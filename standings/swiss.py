"""Swiss stages — pure, no I/O: standings by record and Buchholz, and the pairing of each next round.

The rules are the Counter-Strike Major's (Valve's Major Supplemental Rulebook, "Swiss Bracket" and "Mid-stage Seed
Calculation"), with every number a setting:

- Teams meet opponents of the same W-L record; ``wins_to_advance`` wins advance, ``losses_to_eliminate`` losses
  eliminate. A match that can decide advancement or elimination is a best-of-``decisive_best_of``, every other one a
  best-of-``ordinary_best_of``.
- A team's *difficulty* (Buchholz) is the sum, over every match it played in the stage, of that opponent's current
  wins minus current losses; it changes as the opponents play on.
- Mid-stage seed, which orders a record pool for pairing and is the stage's final ranking: W-L record, then
  difficulty, then (where the stage follows others) each earlier stage's record and difficulty, then initial seed.
- Round 1 pairs seed i with seed i + n/2. In the rounds listed in ``high_low_rounds`` the highest seed of a pool
  meets the lowest seed that is not a rematch; in the other rounds a six-team pool takes the first row of the
  priority table with no rematch. A rematch is allowed only when no pairing of the pool avoids one. An odd pool
  (possible with team counts other than 16) sends its lowest seed down to the next pool, the usual Swiss float.

``SwissStage`` holds the facts (initial seeds, the rounds' pairings as announced, the latest result of each
series) and derives records, difficulty and ranking from them on read, so folding the same results in any order,
with duplicates and corrections, gives the same standings as ``recompute``. Pairings are facts once announced: a
correction of an earlier round never re-pairs a round already announced (the matches may have been played).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crownstream.standings import validators as check
from crownstream.standings.series import SeriesFormat, SeriesResult

STATE_VERSION = 1

#: The Major rulebook's table for a six-team pool, seeds 1-6 of the pool: the first row without a rematch is used.
SIX_TEAM_PRIORITY: tuple[tuple[tuple[int, int], ...], ...] = (
    ((1, 6), (2, 5), (3, 4)),
    ((1, 6), (2, 4), (3, 5)),
    ((1, 5), (2, 6), (3, 4)),
    ((1, 5), (2, 4), (3, 6)),
    ((1, 4), (2, 6), (3, 5)),
    ((1, 4), (2, 5), (3, 6)),
    ((1, 6), (2, 3), (4, 5)),
    ((1, 5), (2, 3), (4, 6)),
    ((1, 3), (2, 6), (4, 5)),
    ((1, 3), (2, 5), (4, 6)),
    ((1, 4), (2, 3), (5, 6)),
    ((1, 3), (2, 4), (5, 6)),
    ((1, 2), (3, 6), (4, 5)),
    ((1, 2), (3, 5), (4, 6)),
    ((1, 2), (3, 4), (5, 6)),
)

#: Ranking criteria, in the order the rulebook applies them; a stage may drop the ones it does not use.
RANKING_CRITERIA = ("record", "difficulty", "prior_stages", "initial_seed")
_RULE_KEYS = frozenset(
    {
        "format",
        "wins_to_advance",
        "losses_to_eliminate",
        "ordinary_best_of",
        "decisive_best_of",
        "high_low_rounds",
        "ranking",
        "seeds",
        "prior_stages",
    }
)


@dataclass(frozen=True, slots=True)
class PriorStage:
    """A team's line in an earlier stage, used after the current stage's own criteria."""

    wins: int
    losses: int
    difficulty: int


@dataclass(frozen=True, slots=True)
class SwissRules:
    wins_to_advance: int = 3
    losses_to_eliminate: int = 3
    ordinary_best_of: int = 1
    decisive_best_of: int = 3
    high_low_rounds: tuple[int, ...] = (2, 3)
    ranking: tuple[str, ...] = RANKING_CRITERIA

    def __post_init__(self) -> None:
        check.integer(self.wins_to_advance, "wins_to_advance", 1)
        check.integer(self.losses_to_eliminate, "losses_to_eliminate", 1)
        SeriesFormat(self.ordinary_best_of)
        SeriesFormat(self.decisive_best_of)
        object.__setattr__(self, "high_low_rounds", tuple(self.high_low_rounds))
        for r in self.high_low_rounds:
            check.integer(r, "a round of high_low_rounds", 2)
        ranking = tuple(self.ranking)
        unknown = [c for c in ranking if c not in RANKING_CRITERIA]
        if unknown or not ranking or ranking[0] != "record" or len(set(ranking)) != len(ranking):
            raise ValueError(
                f"ranking {list(ranking)} is not valid: start with 'record', then any of {list(RANKING_CRITERIA[1:])} "
                "in order, each once"
            )
        object.__setattr__(self, "ranking", ranking)

    def best_of(self, record_a: tuple[int, int], record_b: tuple[int, int]) -> int:
        """Decisive when either team can advance or be eliminated by this match."""
        for wins, losses in (record_a, record_b):
            if wins == self.wins_to_advance - 1 or losses == self.losses_to_eliminate - 1:
                return self.decisive_best_of
        return self.ordinary_best_of

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "swiss",
            "wins_to_advance": self.wins_to_advance,
            "losses_to_eliminate": self.losses_to_eliminate,
            "ordinary_best_of": self.ordinary_best_of,
            "decisive_best_of": self.decisive_best_of,
            "high_low_rounds": list(self.high_low_rounds),
            "ranking": list(self.ranking),
        }


@dataclass(frozen=True, slots=True)
class Pairing:
    series_id: str
    team_a: str  # the higher mid-stage seed when the pipeline paired the round
    team_b: str
    best_of: int

    def to_dict(self) -> dict[str, Any]:
        return {"series_id": self.series_id, "team_a": self.team_a, "team_b": self.team_b, "best_of": self.best_of}

    @classmethod
    def from_dict(cls, data: Any) -> Pairing:
        data = check.mapping(data, "a Swiss pairing", ("series_id", "team_a", "team_b", "best_of"))
        return cls(data["series_id"], data["team_a"], data["team_b"], data["best_of"])


@dataclass(frozen=True, slots=True)
class Round:
    number: int
    pairings: tuple[Pairing, ...]
    source: str = "generated"  # generated | staff

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "source": self.source, "pairings": [p.to_dict() for p in self.pairings]}

    @classmethod
    def from_dict(cls, data: Any) -> Round:
        data = check.mapping(data, "a Swiss round", ("number", "source", "pairings"))
        return cls(
            data["number"], tuple(Pairing.from_dict(p) for p in data["pairings"]), data.get("source", "generated")
        )


@dataclass(frozen=True, slots=True)
class SwissRow:
    rank: int
    team_id: str
    wins: int
    losses: int
    difficulty: int
    initial_seed: int
    status: str  # advanced | eliminated | playing
    decided_by: str  # the criterion that put this team below the one above it; "tie" if none did; "" for rank 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "team_id": self.team_id,
            "wins": self.wins,
            "losses": self.losses,
            "record": f"{self.wins}-{self.losses}",
            "difficulty": self.difficulty,
            "initial_seed": self.initial_seed,
            "status": self.status,
            "decided_by": self.decided_by,
        }


def _record_key(wins: int, losses: int) -> tuple[int, int]:
    return (-wins, losses)


class SwissStage:
    """A Swiss stage's facts and what derives from them."""

    def __init__(
        self,
        stage_id: str,
        seeds: Mapping[str, int],
        rules: SwissRules | None = None,
        prior_stages: Mapping[str, Sequence[PriorStage]] | None = None,
    ) -> None:
        self.stage_id = check.text(stage_id, "stage_id")
        self.rules = rules or SwissRules()
        seeds = dict(seeds)
        if len(seeds) < 2:
            raise ValueError(f"Swiss stage {stage_id!r} needs at least two seeded teams, got {sorted(seeds)}")
        for team, seed in seeds.items():
            check.text(team, "a team id of the seeds")
            check.integer(seed, f"the seed of {team!r}", 1)
        if sorted(seeds.values()) != list(range(1, len(seeds) + 1)):
            raise ValueError(
                f"Swiss stage {stage_id!r} seeds must be 1..{len(seeds)}, each once; got {sorted(seeds.values())}"
            )
        self.seeds: dict[str, int] = seeds
        self.prior_stages: dict[str, tuple[PriorStage, ...]] = {
            team: tuple(lines) for team, lines in (prior_stages or {}).items()
        }
        self.rounds: dict[int, Round] = {}
        self._results: dict[str, SeriesResult] = {}

    # --- facts ------------------------------------------------------------------------------------------

    def update(self, result: SeriesResult) -> bool:
        """Fold the current state of one series in; True if the standings may have changed."""
        for team in (result.team_a, result.team_b):
            if team not in self.seeds:
                raise ValueError(
                    f"series {result.series_id!r} involves {team!r}, who is not seeded in Swiss stage "
                    f"{self.stage_id!r}; seed the team in the stage's rules or route the series elsewhere"
                )
        old = self._results.get(result.series_id)
        if not result.completed:
            return self._results.pop(result.series_id, None) is not None
        if old == result:
            return False
        self._results[result.series_id] = result
        return True

    def set_round(self, round_: Round) -> None:
        """A round's pairings as announced (by the pipeline or staff). Staff replace a generated round; a generated
        one never replaces what is already announced."""
        if round_.number in self.rounds and round_.source == "generated":
            return
        seen: set[str] = set()
        for p in round_.pairings:
            for team in (p.team_a, p.team_b):
                if team not in self.seeds:
                    raise ValueError(f"round {round_.number} pairs {team!r}, who is not seeded in {self.stage_id!r}")
                if team in seen:
                    raise ValueError(f"round {round_.number} pairs {team!r} twice")
                seen.add(team)
        self.rounds[round_.number] = round_

    def results(self) -> tuple[SeriesResult, ...]:
        return tuple(self._results[k] for k in sorted(self._results))

    # --- derived ----------------------------------------------------------------------------------------

    def records(self) -> dict[str, tuple[int, int]]:
        wins = dict.fromkeys(self.seeds, 0)
        losses = dict.fromkeys(self.seeds, 0)
        for r in self._results.values():
            if r.winner is None:
                continue  # a drawn series has no place in a Swiss record
            loser = r.team_b if r.winner == r.team_a else r.team_a
            wins[r.winner] += 1
            losses[loser] += 1
        return {t: (wins[t], losses[t]) for t in self.seeds}

    def opponents(self) -> dict[str, list[str]]:
        met: dict[str, list[str]] = {t: [] for t in self.seeds}
        for r in self._results.values():
            met[r.team_a].append(r.team_b)
            met[r.team_b].append(r.team_a)
        return met

    def difficulty(self) -> dict[str, int]:
        records = self.records()
        return {t: sum(records[o][0] - records[o][1] for o in opps) for t, opps in self.opponents().items()}

    def status(self, wins: int, losses: int) -> str:
        if wins >= self.rules.wins_to_advance:
            return "advanced"
        if losses >= self.rules.losses_to_eliminate:
            return "eliminated"
        return "playing"

    def _criteria(
        self, team: str, records: Mapping[str, tuple[int, int]], difficulty: Mapping[str, int]
    ) -> dict[str, Any]:
        wins, losses = records[team]
        prior = tuple((_record_key(p.wins, p.losses), -p.difficulty) for p in self.prior_stages.get(team, ()))
        return {
            "record": _record_key(wins, losses),
            "difficulty": -difficulty[team],
            "prior_stages": prior,
            "initial_seed": self.seeds[team],
        }

    def standings(self) -> tuple[SwissRow, ...]:
        records, difficulty = self.records(), self.difficulty()
        ranking = self.rules.ranking
        keyed = {t: self._criteria(t, records, difficulty) for t in self.seeds}
        order = sorted(self.seeds, key=lambda t: (tuple(keyed[t][c] for c in ranking), self.seeds[t]))
        rows: list[SwissRow] = []
        for i, team in enumerate(order):
            if i == 0:
                rank, decided_by = 1, ""
            else:
                above = order[i - 1]
                decided_by = next((c for c in ranking if keyed[team][c] != keyed[above][c]), "tie")
                # Teams no rule separates share a rank; the list order among them is the seed, shown as a tie.
                rank = rows[-1].rank if decided_by == "tie" else i + 1
            wins, losses = records[team]
            rows.append(
                SwissRow(
                    rank, team, wins, losses, difficulty[team], self.seeds[team], self.status(wins, losses), decided_by
                )
            )
        return tuple(rows)

    # --- pairing ----------------------------------------------------------------------------------------

    def best_of(self, series_id: str) -> int:
        """The series' best-of: its pairing's, or the stage's ordinary best-of for a series no round paired."""
        for round_ in self.rounds.values():
            for pairing in round_.pairings:
                if pairing.series_id == series_id:
                    return pairing.best_of
        return self.rules.ordinary_best_of

    def current_round(self) -> int:
        """The highest announced round (0 before round 1 is announced)."""
        return max(self.rounds, default=0)

    def round_complete(self, number: int) -> bool:
        round_ = self.rounds.get(number)
        if round_ is None:
            return False
        return all((r := self._results.get(p.series_id)) is not None and r.winner is not None for p in round_.pairings)

    def next_round(self) -> Round | None:
        """The pipeline's pairing of the next round, when the current one is complete (or for round 1); None when
        the current round is still being played or no team is left to play."""
        number = self.current_round() + 1
        if number > 1 and not self.round_complete(number - 1):
            return None
        records = self.records()
        playing = [t for t in self.seeds if self.status(*records[t]) == "playing"]
        if len(playing) < 2:
            return None
        pairs = pair_round(number, playing, records, self.difficulty(), self.seeds, self._met(), self.rules)
        pairings = tuple(
            Pairing(f"{self.stage_id}-r{number}-m{i}", a, b, self.rules.best_of(records[a], records[b]))
            for i, (a, b) in enumerate(pairs, start=1)
        )
        return Round(number, pairings)

    def _met(self) -> set[frozenset[str]]:
        met = {frozenset((r.team_a, r.team_b)) for r in self._results.values()}
        for round_ in self.rounds.values():
            met |= {frozenset((p.team_a, p.team_b)) for p in round_.pairings}
        return met

    # --- persistence ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "stage_id": self.stage_id,
            "seeds": dict(sorted(self.seeds.items(), key=lambda kv: kv[1])),
            "rules": self.rules.to_dict(),
            "prior_stages": {
                t: [{"wins": p.wins, "losses": p.losses, "difficulty": p.difficulty} for p in lines]
                for t, lines in sorted(self.prior_stages.items())
            },
            "rounds": [self.rounds[n].to_dict() for n in sorted(self.rounds)],
            "results": [r.to_dict() for r in self.results()],
        }

    @classmethod
    def from_dict(cls, data: Any) -> SwissStage:
        data = check.mapping(
            data, "stored Swiss stage", ("version", "stage_id", "seeds", "rules", "prior_stages", "rounds", "results")
        )
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"stored Swiss stage has version {data.get('version')!r}; this code reads {STATE_VERSION}")
        rules, seeds, prior = rules_from_dict(
            data["rules"] | {"seeds": data["seeds"], "prior_stages": data.get("prior_stages") or {}}
        )
        stage = cls(data["stage_id"], seeds, rules, prior)
        for raw in data.get("rounds", []):
            stage.set_round(Round.from_dict(raw))
        for raw in data.get("results", []):
            stage.update(SeriesResult.from_dict(raw))
        return stage


def rules_from_dict(data: Any) -> tuple[SwissRules, dict[str, int], dict[str, tuple[PriorStage, ...]]]:
    """The ``rules`` of a ``stage.configured`` event of format "swiss": the rules, the initial seeds and any
    earlier stages' lines."""
    data = check.mapping(data, "Swiss rules", tuple(_RULE_KEYS))
    if data.get("format", "swiss") != "swiss":
        raise ValueError(f"Swiss rules have format 'swiss', got {data['format']!r}")
    seeds = data.get("seeds")
    if not isinstance(seeds, Mapping) or not seeds:
        raise ValueError('Swiss rules need "seeds": {team_id: initial seed (1 = best)} for every team of the stage')
    prior_raw = data.get("prior_stages") or {}
    if not isinstance(prior_raw, Mapping):
        raise ValueError('prior_stages must be {team_id: [{"wins": 3, "losses": 1, "difficulty": 2}, …]}, latest first')
    prior = {}
    for team, lines in prior_raw.items():
        if not isinstance(lines, list):
            raise ValueError(f"prior_stages[{team!r}] must be a list of stage lines, latest first")
        prior[team] = tuple(
            PriorStage(
                check.integer(line.get("wins"), "prior wins", 0),
                check.integer(line.get("losses"), "prior losses", 0),
                check.integer(line.get("difficulty"), "prior difficulty"),
            )
            for line in (check.mapping(x, "a prior stage line", ("wins", "losses", "difficulty")) for x in lines)
        )
    defaults = SwissRules()
    rules = SwissRules(
        wins_to_advance=data.get("wins_to_advance", defaults.wins_to_advance),
        losses_to_eliminate=data.get("losses_to_eliminate", defaults.losses_to_eliminate),
        ordinary_best_of=data.get("ordinary_best_of", defaults.ordinary_best_of),
        decisive_best_of=data.get("decisive_best_of", defaults.decisive_best_of),
        high_low_rounds=tuple(data.get("high_low_rounds", defaults.high_low_rounds)),
        ranking=tuple(data.get("ranking", defaults.ranking)),
    )
    return rules, dict(seeds), prior


# --- pairing (pure functions) -------------------------------------------------------------------------------


def pool_order(teams: Iterable[str], difficulty: Mapping[str, int], seeds: Mapping[str, int]) -> list[str]:
    """Mid-stage seed order within a record pool: difficulty (higher first), then initial seed."""
    return sorted(teams, key=lambda t: (-difficulty[t], seeds[t]))


def pair_round(
    number: int,
    playing: Iterable[str],
    records: Mapping[str, tuple[int, int]],
    difficulty: Mapping[str, int],
    seeds: Mapping[str, int],
    met: set[frozenset[str]],
    rules: SwissRules,
) -> list[tuple[str, str]]:
    """Pairs of (higher seed, lower seed) for round ``number``, best record pool first."""
    playing = list(playing)
    if number == 1:
        ordered = sorted(playing, key=lambda t: seeds[t])
        half = len(ordered) // 2
        return [(ordered[i], ordered[i + half]) for i in range(half)]
    pools: dict[tuple[int, int], list[str]] = {}
    for team in playing:
        pools.setdefault(records[team], []).append(team)
    pairs: list[tuple[str, str]] = []
    floating: list[str] = []
    for record in sorted(pools, key=lambda r: _record_key(*r)):
        pool = floating + pool_order(pools[record], difficulty, seeds)
        floating = []
        if len(pool) % 2:
            floating = [pool.pop()]  # the lowest seed floats down to the next pool
        if number in rules.high_low_rounds or len(pool) != 6:
            pairs += _high_low(pool, met)
        else:
            pairs += _from_table(pool, met)
    return pairs


def _high_low(pool: Sequence[str], met: set[frozenset[str]]) -> list[tuple[str, str]]:
    """Highest seed against the lowest seed that is not a rematch, then the next highest, … — backtracking when a
    choice leaves the rest unpairable; rematches only if every pairing of the pool has one."""
    for allow_rematch in (False, True):
        found = _search(list(pool), met, allow_rematch)
        if found is not None:
            return found
    raise AssertionError("a pool of even size always pairs when rematches are allowed")


def _search(pool: list[str], met: set[frozenset[str]], allow_rematch: bool) -> list[tuple[str, str]] | None:
    if not pool:
        return []
    top, rest = pool[0], pool[1:]
    for j in range(len(rest) - 1, -1, -1):
        opponent = rest[j]
        if not allow_rematch and frozenset((top, opponent)) in met:
            continue
        tail = _search(rest[:j] + rest[j + 1 :], met, allow_rematch)
        if tail is not None:
            return [(top, opponent), *tail]
    return None


def _from_table(pool: Sequence[str], met: set[frozenset[str]]) -> list[tuple[str, str]]:
    for row in SIX_TEAM_PRIORITY:
        pairs = [(pool[a - 1], pool[b - 1]) for a, b in row]
        if not any(frozenset(p) in met for p in pairs):
            return pairs
    return _high_low(pool, met)  # every row has a rematch: the rulebook's "if possible" gives way


def recompute(
    stage_id: str,
    seeds: Mapping[str, int],
    results: Iterable[SeriesResult],
    rules: SwissRules | None = None,
    prior_stages: Mapping[str, Sequence[PriorStage]] | None = None,
) -> tuple[SwissRow, ...]:
    """Standings from scratch (the oracle of the property tests): the last result given per series counts."""
    stage = SwissStage(stage_id, seeds, rules, prior_stages)
    latest: dict[str, SeriesResult] = {}
    for r in results:
        latest[r.series_id] = r
    for r in latest.values():
        stage.update(r)
    return stage.standings()


__all__ = [
    "SIX_TEAM_PRIORITY",
    "Pairing",
    "PriorStage",
    "Round",
    "SwissRow",
    "SwissRules",
    "SwissStage",
    "pair_round",
    "pool_order",
    "recompute",
    "rules_from_dict",
]
