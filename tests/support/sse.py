"""Reading a server-sent event stream in tests, as a browser's EventSource would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass
class Event:
    event: str
    data: str
    id: str | None = None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """Events of an open streaming response; comments (keep-alive pings) are skipped."""
    name, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(name, "\n".join(data), event_id)
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


async def next_event(stream: AsyncIterator[Event], name: str, timeout: float) -> Event:
    async def find() -> Event:
        async for event in stream:
            if event.event == name:
                return event
        raise AssertionError(f"the stream ended before a {name!r} event")

    return await asyncio.wait_for(find(), timeout)
