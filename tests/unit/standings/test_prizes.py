"""Prizes for a ranking with shared ranks: a tie pools the prizes of the places it covers and splits them evenly."""

from __future__ import annotations

from crownstream.standings.prizes import Share, split_prizes

PRIZES = {1: (10_000, "USD"), 2: (5_000, "USD"), 3: (2_001, "USD"), 4: (1_000, "USD")}


def test_places_held_alone_get_their_own_prize():
    shares = split_prizes([(1, "a"), (2, "b"), (3, "c")], PRIZES)
    assert shares == [Share("a", 1, 10_000, "USD", 1), Share("b", 2, 5_000, "USD", 1), Share("c", 3, 2_001, "USD", 1)]


def test_a_tie_pools_the_places_it_covers_and_splits_them_with_the_odd_units_in_list_order():
    # b, c, d share 2nd: places 2-4 pool 5,000 + 2,001 + 1,000 = 8,001 -> 2,667 each.
    shares = split_prizes([(1, "a"), (2, "b"), (2, "c"), (2, "d"), (5, "e")], PRIZES)
    assert [(s.team_id, s.placement, s.amount_minor, s.tied_with) for s in shares] == [
        ("a", 1, 10_000, 1),
        ("b", 2, 2_667, 3),
        ("c", 2, 2_667, 3),
        ("d", 2, 2_667, 3),
    ]
    # 2nd and 3rd shared: 7,001 -> 3,501 and 3,500; nothing is lost to rounding.
    shares = split_prizes([(1, "a"), (2, "b"), (2, "c"), (4, "d")], PRIZES)
    assert [s.amount_minor for s in shares] == [10_000, 3_501, 3_500, 1_000]
    assert sum(s.amount_minor for s in shares) == sum(a for a, _ in PRIZES.values())


def test_a_tie_past_the_paid_places_pays_only_what_those_places_carry():
    shares = split_prizes([(1, "a"), (2, "b"), (3, "c"), (4, "d"), (4, "e")], PRIZES)
    assert [(s.team_id, s.amount_minor) for s in shares][-2:] == [("d", 500), ("e", 500)]
