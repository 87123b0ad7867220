"""Prize shares for a final ranking in which teams may share a rank — pure, no I/O.

Teams level on every tiebreaker share a rank (1, 2, 2, 4), so a tie covers as many places as it has teams. The
usual esports rule (ESL, BLAST, Riot's global rules) pools the prizes of the places a tie covers and splits them
evenly; amounts are in minor units, and the few units an even split leaves over go one each to the tied teams in
the order they are listed (a rounding rule, not a ranking: it never moves a team).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Share:
    team_id: str
    placement: int  # the team's rank: tied teams share it
    amount_minor: int
    currency: str
    tied_with: int  # how many teams share the placement (1: none)


def split_prizes(ranking: Sequence[tuple[int, str]], prizes: Mapping[int, tuple[int, str]]) -> list[Share]:
    """``ranking``: (rank, team) best first; ``prizes``: place -> (amount in minor units, currency)."""
    groups: dict[int, list[str]] = {}
    for rank, team in ranking:
        groups.setdefault(rank, []).append(team)
    shares: list[Share] = []
    for rank, teams in groups.items():
        places = range(rank, rank + len(teams))
        pools: dict[str, int] = {}
        for place in places:
            if place in prizes:
                amount, currency = prizes[place]
                pools[currency] = pools.get(currency, 0) + amount
        for currency, pool in sorted(pools.items()):
            each, left = divmod(pool, len(teams))
            for i, team in enumerate(teams):
                shares.append(Share(team, rank, each + (1 if i < left else 0), currency, len(teams)))
    return shares
