"""``crownstream produce``: validate a JSON-lines file, then produce its valid lines."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson
from tqdm import tqdm

from crownstream.schemas.codec import Rejection, from_dict
from crownstream.schemas.events import Envelope
from crownstream.streams.producer import EventProducer


@dataclass
class ProduceResult:
    accepted: int = 0
    blank: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def parse_lines(source: BinaryIO) -> tuple[list[Envelope], ProduceResult]:
    """Validate every line before sending any, so a typo on line 900 is reported before 899 lines go out."""
    result = ProduceResult()
    events: list[Envelope] = []
    for line_no, line in enumerate(source, start=1):
        if not line.strip():
            result.blank += 1
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            result.rejected.append((line_no, f"not valid JSON: {exc}"))
            continue
        decoded = from_dict(data)
        if isinstance(decoded, Rejection):
            result.rejected.append((line_no, decoded.reason))
        else:
            events.append(decoded)
    result.accepted = len(events)
    return events, result


async def produce_lines(source: BinaryIO, *, send: bool = True, progress: bool | None = None) -> ProduceResult:
    events, result = parse_lines(source)
    if not send or not events:
        return result
    show = sys.stderr.isatty() if progress is None else progress
    async with EventProducer() as producer:
        with tqdm(total=len(events), unit="ev", disable=not show, file=sys.stderr) as bar:
            for event in events:
                await producer.send(event)
                bar.update(1)
            await producer.flush()
    return result
