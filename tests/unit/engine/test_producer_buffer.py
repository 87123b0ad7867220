"""The producer buffer the exactly-once commit drains (crownstream/engine/producer_buffer.py): flush returns only when
every queued table write has been handed to the producer, including the one being sent when flush is called."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.transport.producer import ProducerBuffer

from crownstream.engine.producer_buffer import DrainingProducerBuffer

SEND_SECONDS = 0.25  # slower than faust's 0.1 s flush patience: a loaded machine


class SlowChannel:
    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish_message(self, fut, wait: bool = False) -> None:
        await asyncio.sleep(SEND_SECONDS)
        self.published.append(fut.message.n)


async def buffered(buffer_cls, n: int):
    buffer = buffer_cls()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    channel = SlowChannel()
    await buffer.start()
    for i in range(n):
        buffer.put(SimpleNamespace(message=SimpleNamespace(channel=channel, n=i)))
    await asyncio.sleep(0.01)  # the background task has taken the first record and is sending it
    return buffer, channel


async def test_flush_returns_after_every_queued_and_in_flight_record_is_sent():
    buffer, channel = await buffered(DrainingProducerBuffer, 5)
    try:
        assert buffer.in_flight == 1 and buffer.size == 4
        await buffer.flush()
        assert sorted(channel.published) == [0, 1, 2, 3, 4]
        assert buffer.size == 0 and buffer.in_flight == 0
    finally:
        await buffer.stop()


async def test_flush_of_an_empty_buffer_returns_at_once():
    buffer, channel = await buffered(DrainingProducerBuffer, 0)
    try:
        await asyncio.wait_for(buffer.flush(), timeout=1)
        assert channel.published == []
    finally:
        await buffer.stop()


async def test_faust_buffer_flush_returns_with_writes_still_queued():
    """Why the class exists; if an upgrade of faust-streaming makes this fail, the workaround can go."""
    buffer, channel = await buffered(ProducerBuffer, 5)
    try:
        await buffer.flush()
        assert len(channel.published) < 5
    finally:
        while buffer.size:  # noqa: ASYNC110  (faust's own stop refuses to flush a non-empty buffer; it has no event)
            await asyncio.sleep(0.05)
        await buffer.stop()
