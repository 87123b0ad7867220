"""Elimination formats — pure, no I/O: GSL groups, single- and double-elimination brackets, grand-final resets.

Every elimination format is one shape: a list of *slots* (matches), each fed by two *sources* — a seed, or the
winner or loser of an earlier slot — and each giving places to the team it eliminates (``loser_place``) and, for
the last match, to its winner (``winner_place``). The templates below build the usual shapes (a GSL group with or
without a decider, a seeded single-elimination bracket of any size with byes for the top seeds, an 8-team double
elimination with the usual crossover, with or without a bracket reset); a stage may also give its slots
explicitly, as a tournament platform's bracket editor would.

A seed with no team (more slots than teams) is a bye: its opponent goes through without a match. A grand-final
reset is a slot with ``reset_of``: it is played only if the grand final was won by its lower-bracket side (side b),
and then it gives the places instead of the grand final.

``Bracket`` holds the facts (the seeds and the latest result per slot) and derives who plays each slot, who is
through and every place on read, so results folded in any order, with duplicates and corrections, give the same
standings as ``recompute``. A result whose teams are not the slot's teams (an earlier correction changed who
advanced) does not count and is reported as a conflict until the platform corrects it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crownstream.standings import validators as check
from crownstream.standings.series import SeriesFormat, SeriesResult

STATE_VERSION = 1
_SOURCE_KINDS = ("seed", "winner", "loser")


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # seed | winner | loser
    ref: str  # the seed number, or the slot id

    @classmethod
    def parse(cls, text: Any, where: str) -> Source:
        kind, _, ref = str(text).partition(":")
        if kind not in _SOURCE_KINDS or not ref:
            raise ValueError(f'{where}: a source is "seed:N", "winner:SLOT" or "loser:SLOT", got {text!r}')
        if kind == "seed":
            check.integer(int(ref) if ref.isdigit() else ref, f"{where}: the seed number", 1)
        return cls(kind, ref)

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}"


#: A slot's best-of when its template or rules give none.
DEFAULT_BEST_OF = 3


@dataclass(frozen=True, slots=True)
class Slot:
    id: str
    a: Source
    b: Source
    best_of: int = DEFAULT_BEST_OF
    loser_place: str | None = None  # e.g. "3", "5-6"; None: the loser drops to another slot
    winner_place: str | None = None  # the last match only: "1"
    reset_of: str | None = None  # a grand-final reset: played only if that slot was won by its side b

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "a": str(self.a), "b": str(self.b), "best_of": self.best_of}
        for name in ("loser_place", "winner_place", "reset_of"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Slot:
        data = check.mapping(
            data, "a bracket slot", ("id", "a", "b", "best_of", "loser_place", "winner_place", "reset_of")
        )
        slot_id = check.text(data.get("id"), "a slot's id")
        return cls(
            slot_id,
            Source.parse(data.get("a"), f"slot {slot_id!r} side a"),
            Source.parse(data.get("b"), f"slot {slot_id!r} side b"),
            data.get("best_of", 3),
            data.get("loser_place"),
            data.get("winner_place"),
            data.get("reset_of"),
        )


def _place_rank(place: str) -> int:
    return int(place.split("-", 1)[0])


def validate_slots(slots: Sequence[Slot], seed_count: int) -> tuple[Slot, ...]:
    """Every source names an earlier slot or a seed, every slot id is unique, each team can be placed once."""
    seen: dict[str, Slot] = {}
    feeds: dict[str, int] = {}
    for slot in slots:
        if slot.id in seen:
            raise ValueError(f"slot id {slot.id!r} is used twice")
        SeriesFormat(slot.best_of)
        for source in (slot.a, slot.b):
            if source.kind == "seed":
                continue
            if source.ref not in seen:
                raise ValueError(
                    f"slot {slot.id!r} takes the {source.kind} of {source.ref!r}, which is not an earlier slot; "
                    "list slots in the order they are played"
                )
            key = f"{source.kind}:{source.ref}"
            feeds[key] = feeds.get(key, 0) + 1
            if feeds[key] > 1:
                raise ValueError(f"the {source.kind} of slot {source.ref!r} is sent to two slots")
        if slot.reset_of is not None:
            final = seen.get(slot.reset_of)
            if final is None:
                raise ValueError(f"slot {slot.id!r} resets {slot.reset_of!r}, which is not an earlier slot")
        for place in (slot.loser_place, slot.winner_place):
            if place is not None and not _valid_place(place):
                raise ValueError(f"slot {slot.id!r}: a place is a number or a range like '5-6', got {place!r}")
        seen[slot.id] = slot
    seeds = {int(s.ref) for slot in slots for s in (slot.a, slot.b) if s.kind == "seed"}
    if seeds and max(seeds) < seed_count:
        raise ValueError(f"the bracket seats seeds up to {max(seeds)}, but {seed_count} teams are seeded")
    return tuple(slots)


def _valid_place(place: str) -> bool:
    first, _, last = place.partition("-")
    return first.isdigit() and (not last or (last.isdigit() and int(last) >= int(first))) and int(first) >= 1


# --- templates ----------------------------------------------------------------------------------------------


def gsl_group(best_of: int = 3, decider_best_of: int | None = None, decider: bool = True) -> tuple[Slot, ...]:
    """Four-team double elimination: openings seed 1 v 2 and 3 v 4, winners' match, elimination match, decider.
    Without a decider (three teams go through) the winners' loser and the elimination winner share 2-3."""
    slots = [
        Slot("opening_1", Source("seed", "1"), Source("seed", "2"), best_of),
        Slot("opening_2", Source("seed", "3"), Source("seed", "4"), best_of),
        Slot(
            "winners",
            Source("winner", "opening_1"),
            Source("winner", "opening_2"),
            best_of,
            None if decider else "2-3",
            "1",
        ),
        Slot("elimination", Source("loser", "opening_1"), Source("loser", "opening_2"), best_of, "4"),
    ]
    if decider:
        slots.append(
            Slot(
                "decider",
                Source("loser", "winners"),
                Source("winner", "elimination"),
                decider_best_of or best_of,
                "3",
                "2",
            )
        )
    else:
        # The elimination winner is through, sharing 2-3: a "winner place" of a slot that is not the last one.
        slots[3] = Slot("elimination", slots[3].a, slots[3].b, best_of, "4", "2-3")
    return tuple(slots)


def standard_seed_order(size: int) -> list[int]:
    """Bracket positions of seeds 1..size (a power of two): 1 v size, and the top seeds meet as late as possible."""
    order = [1]
    while len(order) < size:
        n = len(order) * 2
        order = [s for seed in order for s in (seed, n + 1 - seed)]
    return order


def single_elimination(
    teams: int, best_of: int = 3, final_best_of: int | None = None, third_place: bool = False
) -> tuple[Slot, ...]:
    """A seeded bracket for ``teams`` teams; the top seeds get the byes when ``teams`` is not a power of two."""
    check.integer(teams, "teams", 2)
    size = 1
    while size < teams:
        size *= 2
    order = standard_seed_order(size)
    slots: list[Slot] = []
    current = [Source("seed", str(s)) for s in order]
    rounds = size.bit_length() - 1
    for r in range(1, rounds + 1):
        nxt: list[Source] = []
        last = r == rounds
        # The losers of a round share the places below the teams still in after it; byes (round 1 only, the top
        # seeds') shrink the first round's share to the teams actually beaten in it.
        first, final = len(current) // 2 + 1, (teams if r == 1 else len(current))
        place = (
            None
            if (last or (third_place and r == rounds - 1))
            else (f"{first}-{final}" if final > first else str(first))
        )
        for i in range(0, len(current), 2):
            slot_id = "final" if last else f"r{r}_m{i // 2 + 1}"
            slots.append(
                Slot(
                    slot_id,
                    current[i],
                    current[i + 1],
                    final_best_of or best_of if last else best_of,
                    "2" if last else place,
                    "1" if last else None,
                )
            )
            nxt.append(Source("winner", slot_id))
        current = nxt
    if third_place and rounds >= 2:
        semis = [s.id for s in slots if s.id.startswith(f"r{rounds - 1}_")]
        slots.append(Slot("third_place", Source("loser", semis[0]), Source("loser", semis[1]), best_of, "4", "3"))
    return tuple(slots)


def double_elimination_8(best_of: int = 3, finals_best_of: int = 5, reset: bool = False) -> tuple[Slot, ...]:
    """Eight teams, seeded 1 v 8, 4 v 5, 2 v 7, 3 v 6; the upper semi-finals' losers cross over in the lower
    bracket (the loser of upper semi 1 meets the winner of lower round 1 match 2) so that no early rematch comes
    round; lower final and grand final best-of-``finals_best_of``."""
    s = Source  # keeps the table below readable
    slots = [
        Slot("ub_qf1", s("seed", "1"), s("seed", "8"), best_of),
        Slot("ub_qf2", s("seed", "4"), s("seed", "5"), best_of),
        Slot("ub_qf3", s("seed", "2"), s("seed", "7"), best_of),
        Slot("ub_qf4", s("seed", "3"), s("seed", "6"), best_of),
        Slot("lb_r1_m1", s("loser", "ub_qf1"), s("loser", "ub_qf2"), best_of, "7-8"),
        Slot("lb_r1_m2", s("loser", "ub_qf3"), s("loser", "ub_qf4"), best_of, "7-8"),
        Slot("ub_sf1", s("winner", "ub_qf1"), s("winner", "ub_qf2"), best_of),
        Slot("ub_sf2", s("winner", "ub_qf3"), s("winner", "ub_qf4"), best_of),
        Slot("lb_r2_m1", s("loser", "ub_sf1"), s("winner", "lb_r1_m2"), best_of, "5-6"),
        Slot("lb_r2_m2", s("loser", "ub_sf2"), s("winner", "lb_r1_m1"), best_of, "5-6"),
        Slot("ub_final", s("winner", "ub_sf1"), s("winner", "ub_sf2"), best_of),
        Slot("lb_r3", s("winner", "lb_r2_m1"), s("winner", "lb_r2_m2"), best_of, "4"),
        Slot("lb_final", s("loser", "ub_final"), s("winner", "lb_r3"), finals_best_of, "3"),
        Slot("grand_final", s("winner", "ub_final"), s("winner", "lb_final"), finals_best_of, "2", "1"),
    ]
    if reset:
        slots.append(
            Slot(
                "grand_final_reset",
                s("winner", "grand_final"),
                s("loser", "grand_final"),
                finals_best_of,
                "2",
                "1",
                "grand_final",
            )
        )
    return tuple(slots)


def double_elimination(teams: int, best_of: int = 3, finals_best_of: int = 5, reset: bool = False) -> tuple[Slot, ...]:
    """Double elimination for any number of teams (byes for the top seeds up to the next power of two): the upper
    bracket seeded as ``single_elimination``; the lower bracket opens with the upper first round's losers, then
    alternates a round where the next upper round's losers drop in (against the lower winners in reverse order, so
    that teams who met early do not meet again at once) with a round among the lower winners; the upper final's
    loser meets the lower winner in the lower final, and its winner the upper champion in the grand final (with a
    reset when ``reset``). Losers of each lower round share the places below the teams still in."""
    check.integer(teams, "teams", 4)
    size = 4
    while size < teams:
        size *= 2
    rounds = size.bit_length() - 1
    order = standard_seed_order(size)
    slots: list[Slot] = []
    upper: list[list[str]] = []
    current = [Source("seed", str(s)) for s in order]
    for r in range(1, rounds + 1):
        ids = ["ub_final" if r == rounds else f"ub_r{r}_m{i // 2 + 1}" for i in range(0, len(current), 2)]
        for i, slot_id in enumerate(ids):
            slots.append(Slot(slot_id, current[2 * i], current[2 * i + 1], best_of))
        upper.append(ids)
        current = [Source("winner", i) for i in ids]
    # The lower bracket, round by round. Round 1: the first upper round's losers play each other.
    lower_rounds: list[list[Slot]] = []
    pending = [Source("loser", slot_id) for slot_id in upper[0]]
    j = 1
    round_slots = [
        Slot(f"lb_r{j}_m{i // 2 + 1}", pending[i], pending[i + 1], best_of) for i in range(0, len(pending), 2)
    ]
    lower_rounds.append(round_slots)
    lower_winners = [Source("winner", s.id) for s in round_slots]
    for r in range(2, rounds + 1):
        drops = [Source("loser", i) for i in upper[r - 1]]
        j += 1
        last = r == rounds
        dropped = [
            Slot(
                "lb_final" if last else f"lb_r{j}_m{i + 1}",
                drops[i],
                lower_winners[len(lower_winners) - 1 - i],
                finals_best_of if last else best_of,
            )
            for i in range(len(drops))
        ]
        lower_rounds.append(dropped)
        lower_winners = [Source("winner", s.id) for s in dropped]
        if len(lower_winners) > 1:
            j += 1
            merged = [
                Slot(f"lb_r{j}_m{i // 2 + 1}", lower_winners[i], lower_winners[i + 1], best_of)
                for i in range(0, len(lower_winners), 2)
            ]
            lower_rounds.append(merged)
            lower_winners = [Source("winner", s.id) for s in merged]
    # Places, from the bottom: the losers of each lower round share the next places up.
    places: dict[str, str] = {}
    bottom = size
    for round_slots in lower_rounds:
        top = bottom - len(round_slots) + 1
        for s in round_slots:
            places[s.id] = str(top) if top == bottom else f"{top}-{bottom}"
        bottom = top - 1
    # Interleave the lower rounds after the upper rounds that feed them, so every source is an earlier slot.
    ordered: list[Slot] = []
    upper_rounds = [[s for s in slots if s.id in ids] for ids in upper]
    ordered += upper_rounds[0]
    lower_iter = iter(lower_rounds)
    ordered += next(lower_iter)
    for r in range(1, rounds):
        ordered += upper_rounds[r]
        ordered += next(lower_iter)  # the drop-in round of this upper round's losers
        if r < rounds - 1:
            ordered += next(lower_iter)  # the lower winners' own round
    ordered = [Slot(s.id, s.a, s.b, s.best_of, places.get(s.id), None, None) for s in ordered]
    ordered.append(
        Slot("grand_final", Source("winner", "ub_final"), Source("winner", "lb_final"), finals_best_of, "2", "1")
    )
    if reset:
        ordered.append(
            Slot(
                "grand_final_reset",
                Source("winner", "grand_final"),
                Source("loser", "grand_final"),
                finals_best_of,
                "2",
                "1",
                "grand_final",
            )
        )
    return tuple(ordered)


TEMPLATES = ("gsl_group", "single_elimination", "double_elimination_8", "double_elimination", "slots")


def slots_from_dict(data: Any, teams: int) -> tuple[Slot, ...]:
    """The bracket of a stage's rules: {"template": "gsl_group" | "single_elimination" | "double_elimination_8",
    options…} or {"template": "slots", "slots": [...]}."""
    data = check.mapping(
        data,
        "a bracket",
        (
            "template",
            "slots",
            "best_of",
            "final_best_of",
            "finals_best_of",
            "decider_best_of",
            "decider",
            "reset",
            "third_place",
        ),
    )
    template = data.get("template")
    if template == "gsl_group":
        if teams != 4:
            raise ValueError(f"a GSL group has four teams, got {teams}")
        return gsl_group(data.get("best_of", 3), data.get("decider_best_of"), data.get("decider", True))
    if template == "single_elimination":
        return single_elimination(
            teams, data.get("best_of", 3), data.get("final_best_of"), data.get("third_place", False)
        )
    if template == "double_elimination_8":
        if teams != 8:
            raise ValueError(f"double_elimination_8 seats eight teams, got {teams}")
        return double_elimination_8(data.get("best_of", 3), data.get("finals_best_of", 5), data.get("reset", False))
    if template == "double_elimination":
        return double_elimination(
            teams, data.get("best_of", 3), data.get("finals_best_of", 5), data.get("reset", False)
        )
    if template == "slots":
        raw = data.get("slots")
        if not isinstance(raw, list) or not raw:
            raise ValueError('a "slots" bracket needs "slots": a list of {"id", "a", "b", "best_of", …}')
        return tuple(Slot.from_dict(x) for x in raw)
    raise ValueError(f"unknown bracket template {template!r}; choose from {list(TEMPLATES)}")


def bracket_from_rules(stage_id: str, rules: Mapping[str, Any]) -> Bracket:
    """The bracket of a ``stage.configured`` event's rules of format "bracket": its seeds and its slots."""
    options = {k: v for k, v in rules.items() if k not in ("format", "seeds") and v is not None}
    seeds = rules.get("seeds")
    if not isinstance(seeds, Mapping) or len(seeds) < 2:
        raise ValueError('bracket rules need "seeds": {team_id: seed (1 = best)} for at least two teams')
    return Bracket(stage_id, seeds, slots_from_dict(options, len(seeds)))


# --- the bracket ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotState:
    slot: Slot
    team_a: str | None  # None: not known yet, or a bye
    team_b: str | None
    winner: str | None
    status: str  # waiting | ready | completed | bye | not_played | conflict
    series_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot.id,
            "series_id": self.series_id,
            "team_a": self.team_a,
            "team_b": self.team_b,
            "best_of": self.slot.best_of,
            "winner": self.winner,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class BracketRow:
    rank: int | None  # None while the team is still in
    team_id: str
    place: str | None  # as published: "1", "5-6" …
    status: str  # alive | placed
    decided_by: str  # "placement", or "tie" when it shares its place with the team above; "" first

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "team_id": self.team_id,
            "place": self.place,
            "status": self.status,
            "decided_by": self.decided_by,
        }


_BYE = object()  # a side with no team: a seed past the last team, or the loser of a bye


class Bracket:
    def __init__(self, stage_id: str, seeds: Mapping[str, int], slots: Sequence[Slot]) -> None:
        self.stage_id = check.text(stage_id, "stage_id")
        seeds = dict(seeds)
        if sorted(seeds.values()) != list(range(1, len(seeds) + 1)):
            raise ValueError(
                f"bracket {stage_id!r} seeds must be 1..{len(seeds)}, each once; got {sorted(seeds.values())}"
            )
        self.seeds = seeds
        self.slots = validate_slots(slots, len(seeds))
        self._by_seed = {n: t for t, n in seeds.items()}
        self._by_series = {self.series_id(s): s for s in self.slots}
        self._results: dict[str, SeriesResult] = {}

    def series_id(self, slot: Slot) -> str:
        return f"{self.stage_id}-{slot.id}"

    def slot_of(self, series_id: str) -> Slot | None:
        return self._by_series.get(series_id)

    def best_of(self, series_id: str) -> int:
        """The series' best-of: its slot's; a best-of-3 for a series no slot names (refused when it is folded)."""
        slot = self.slot_of(series_id)
        return slot.best_of if slot is not None else DEFAULT_BEST_OF

    def update(self, result: SeriesResult) -> bool:
        if result.series_id not in self._by_series:
            raise ValueError(
                f"series {result.series_id!r} is not a match of bracket {self.stage_id!r}; its series ids are "
                f"{self.stage_id}-<slot> for slots {[s.id for s in self.slots]}"
            )
        for team in (result.team_a, result.team_b):
            if team not in self.seeds:
                raise ValueError(
                    f"series {result.series_id!r} involves {team!r}, who is not seeded in {self.stage_id!r}"
                )
        if not result.completed:
            return self._results.pop(result.series_id, None) is not None
        if self._results.get(result.series_id) == result:
            return False
        self._results[result.series_id] = result
        return True

    def results(self) -> tuple[SeriesResult, ...]:
        return tuple(self._results[k] for k in sorted(self._results))

    def states(self) -> tuple[SlotState, ...]:
        """Who plays each slot and what became of it, derived from the seeds and results in slot order."""
        winners: dict[str, Any] = {}
        losers: dict[str, Any] = {}
        out: list[SlotState] = []
        by_id: dict[str, SlotState] = {}

        def team(source: Source) -> Any:
            if source.kind == "seed":
                return self._by_seed.get(int(source.ref), _BYE)
            return (winners if source.kind == "winner" else losers).get(source.ref)

        for slot in self.slots:
            sid = self.series_id(slot)
            a, b = team(slot.a), team(slot.b)
            if slot.reset_of is not None:
                final = by_id[slot.reset_of]
                if final.status != "completed":
                    state = SlotState(slot, None, None, None, "waiting", sid)
                elif final.winner == final.team_a:
                    state = SlotState(slot, None, None, None, "not_played", sid)
                else:
                    assert final.team_a is not None and final.team_b is not None  # completed: both known
                    a, b = final.team_a, final.team_b  # the same two teams again
                    state = self._played(slot, a, b, sid)
            elif a is _BYE or b is _BYE:
                through = b if a is _BYE else a
                state = SlotState(
                    slot,
                    None if a is _BYE else a,
                    None if b is _BYE else b,
                    None if through is _BYE or through is None else through,
                    "bye",
                    sid,
                )
                winners[slot.id] = _BYE if through is _BYE else through
                losers[slot.id] = _BYE
            elif a is None or b is None:
                state = SlotState(slot, a, b, None, "waiting", sid)
            else:
                state = self._played(slot, a, b, sid)
            if state.status == "completed":
                winners[slot.id] = state.winner
                losers[slot.id] = state.team_b if state.winner == state.team_a else state.team_a
            out.append(state)
            by_id[slot.id] = state
        return tuple(out)

    def _played(self, slot: Slot, a: str, b: str, series_id: str) -> SlotState:
        result = self._results.get(series_id)
        if result is None or result.winner is None:
            return SlotState(slot, a, b, None, "ready", series_id)
        if {result.team_a, result.team_b} != {a, b}:
            return SlotState(slot, a, b, None, "conflict", series_id)
        return SlotState(slot, a, b, result.winner, "completed", series_id)

    def conflicts(self) -> list[str]:
        return [s.series_id for s in self.states() if s.status == "conflict"]

    def places(self) -> dict[str, str]:
        placed: dict[str, str] = {}
        states = self.states()
        reset_played = {s.slot.reset_of for s in states if s.slot.reset_of and s.status != "not_played"}
        for state in states:
            if state.status != "completed" or state.slot.id in reset_played:
                continue
            assert state.winner is not None and state.team_a is not None and state.team_b is not None
            loser = state.team_b if state.winner == state.team_a else state.team_a
            if state.slot.loser_place is not None:
                placed[loser] = state.slot.loser_place
            if state.slot.winner_place is not None:
                placed[state.winner] = state.slot.winner_place
        return placed

    def standings(self) -> tuple[BracketRow, ...]:
        places = self.places()
        alive = sorted((t for t in self.seeds if t not in places), key=self.seeds.__getitem__)
        finished = sorted(places, key=lambda t: (_place_rank(places[t]), self.seeds[t]))
        rows: list[BracketRow] = [BracketRow(None, t, None, "alive", "") for t in alive]
        for team in finished:
            place = places[team]
            if not rows:
                decided_by = ""
            else:
                above = rows[-1]
                decided_by = "tie" if above.place == place else "placement"
            # Teams eliminated in the same round share their place (5-6 …): a rank, not a list order.
            rows.append(BracketRow(_place_rank(place), team, place, "placed", decided_by))
        return tuple(rows)

    def ready_matches(self) -> list[SlotState]:
        """Matches whose two teams are known and whose result is not in: what ``bracket.ready`` announces."""
        return [s for s in self.states() if s.status == "ready"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "stage_id": self.stage_id,
            "seeds": dict(sorted(self.seeds.items(), key=lambda kv: kv[1])),
            "slots": [s.to_dict() for s in self.slots],
            "results": [r.to_dict() for r in self.results()],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Bracket:
        data = check.mapping(data, "a stored bracket", ("version", "stage_id", "seeds", "slots", "results"))
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"stored bracket has version {data.get('version')!r}; this code reads {STATE_VERSION}")
        bracket = cls(data["stage_id"], data["seeds"], [Slot.from_dict(s) for s in data["slots"]])
        for raw in data.get("results", []):
            bracket.update(SeriesResult.from_dict(raw))
        return bracket


def recompute(
    stage_id: str, seeds: Mapping[str, int], slots: Sequence[Slot], results: Iterable[SeriesResult]
) -> tuple[BracketRow, ...]:
    bracket = Bracket(stage_id, seeds, slots)
    latest = {r.series_id: r for r in results}
    for r in latest.values():
        bracket.update(r)
    return bracket.standings()
