"""What every peer computes, and the independent check of what it reports.

The totals are those of the standings engine's battle-royale fold for the bench's stage rules (ALGS point
table, 1 point a kill: see ``bench/standings.py``'s ``stage_config``), keyed ``tournament/team``. The expected
totals are summed here from the same generator ``fill_topic`` produced the topic from, so a peer that drops,
duplicates or mis-scores a record is caught.
"""

from __future__ import annotations

from collections import defaultdict

from bench.common import team_result
from crownstream.standings.point_tables import PointTable

TABLE = PointTable.named("algs")
KILL_POINTS = 1


def total_key(tournament_id: str, team_id: str) -> str:
    return f"{tournament_id}/{team_id}"


def expected_totals(count: int, make=team_result) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for n in range(count):
        row = make(n)
        totals[total_key(row["tournament_id"], row["team_id"])] += (
            TABLE.points_for(row["placement"]) + row["kills"] * KILL_POINTS
        )
    return dict(totals)


def mismatch(expected: dict[str, int], reported: dict[str, int]) -> str | None:
    """None when the reported totals are exactly the expected ones, else what differs (a few examples)."""
    missing = sorted(expected.keys() - reported.keys())
    extra = sorted(reported.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & reported.keys() if expected[k] != reported[k])
    if not (missing or extra or wrong):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} teams missing (e.g. {', '.join(missing[:3])})")
    if extra:
        parts.append(f"{len(extra)} unexpected keys (e.g. {', '.join(extra[:3])})")
    if wrong:
        parts.append(
            f"{len(wrong)} wrong totals (e.g. "
            + ", ".join(f"{k}: {reported[k]} instead of {expected[k]}" for k in wrong[:3])
            + ")"
        )
    return "; ".join(parts)
