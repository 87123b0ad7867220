from __future__ import annotations

import io

import orjson

from crownstream.schemas.examples import example
from crownstream.streams.produce_file import parse_lines


def test_invalid_lines_are_reported_by_number_and_reason():
    lines = [
        orjson.dumps(example("match.started", event_id="ok-1")),
        b"",
        b"{oops",
        orjson.dumps(example("match.started", event_id="bad-1", match_id="")),
        orjson.dumps(example("bracket.ready", event_id="ok-2")),
        orjson.dumps({"type": "nope"}),
    ]
    events, result = parse_lines(io.BytesIO(b"\n".join(lines) + b"\n"))
    assert [e.event_id for e in events] == ["ok-1", "ok-2"]
    assert result.accepted == 2 and result.blank == 1
    assert [n for n, _ in result.rejected] == [3, 4, 6]
    assert "not valid JSON" in result.rejected[0][1]
    assert "match_id: String should have at least 1 character" in result.rejected[1][1]
    assert "unknown event type 'nope'" in result.rejected[2][1]
