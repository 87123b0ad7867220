"""A stage's match ids: a new match is two small index writes, and stage records written before the index still
list their matches first."""

from __future__ import annotations

from unittest import mock

from crownstream.agents import standings


def test_index_appends_after_the_list_of_an_older_stage_record():
    index: dict[str, object] = {}
    record = {**standings.new_stage_record(), "matches": ["m1", "m2"]}
    with (
        mock.patch.object(standings, "br_match_index", index),
        mock.patch.object(standings, "stages", {"cup/br": record}),
    ):
        for match_id in ("m3", "m4"):
            standings._index_match("cup/br", match_id)
        assert standings.match_ids("cup/br", record) == ["m1", "m2", "m3", "m4"]
        assert standings.match_count("cup", "br") == 4
    # What a lobby writes: its id under the next number, and the count; never the growing list.
    assert index == {"cup/br#0": "m3", "cup/br#1": "m4", "cup/br#count": 2}
    assert record["matches"] == ["m1", "m2"]


def test_a_stage_without_matches():
    with mock.patch.object(standings, "br_match_index", {}), mock.patch.object(standings, "stages", {}):
        assert standings.match_ids("cup/br", standings.new_stage_record()) == []
        assert standings.match_count("cup", "br") == 0
