"""The revocation's last commit sees what was acknowledged (crownstream/engine/consumer.py, UPSTREAM.md F21).

Faust's ``Consumer.on_partitions_revoked`` drops the revoked partitions' acknowledged offsets before it runs the app's
revocation handler, which waits for the streams and makes the generation's last commit: that commit committed the
transactions holding those events' outputs without their offsets. Here the consumer is the worker's, its handler a
stand-in that records what it sees; no broker is involved (the ordering is all there is to it)."""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from types import SimpleNamespace

from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from crownstream.engine.consumer import _Consumer

USERS = TP("cs.notification-users", 3)
KEPT = TP("cs.notification-users", 4)


class Diag:
    def set_flag(self, flag: str) -> None: ...

    def unset_flag(self, flag: str) -> None: ...


def consumer_with_acks(cls: type) -> tuple[Consumer, list[dict]]:
    consumer = object.__new__(cls)
    consumer.diag = Diag()
    consumer.app = SimpleNamespace(_start_span_from_rebalancing=lambda name: nullcontext())
    consumer._active_partitions = {USERS, KEPT}
    consumer._paused_partitions = set()
    consumer._gap = defaultdict(IntervalTree)
    consumer._acked = defaultdict(list, {USERS: [90, 91, 92], KEPT: [7]})
    consumer._acked_index = defaultdict(set, {USERS: {90, 91, 92}, KEPT: {7}})
    consumer._read_offset = defaultdict(lambda: None, {USERS: 92, KEPT: 7})
    consumer._committed_offset = defaultdict(lambda: None, {USERS: 90, KEPT: 7})
    seen: list[dict] = []

    async def app_handler(revoked: set[TP]) -> None:  # App._on_partitions_revoked: wait for streams, commit
        seen.append({tp: (list(consumer._acked.get(tp, [])), consumer._committed_offset.get(tp)) for tp in revoked})

    consumer._on_partitions_revoked = app_handler
    return consumer, seen


async def test_the_revocation_commit_sees_the_acknowledged_offsets_of_the_partitions_given_up():
    consumer, seen = consumer_with_acks(_Consumer)
    await consumer.on_partitions_revoked({USERS})
    assert seen == [{USERS: ([90, 91, 92], 90)}]  # what the handler's commit reads: offsets 90-92, from 90
    # Dropped afterwards, as Faust does; a partition kept is left alone.
    assert USERS not in consumer._acked and USERS not in consumer._committed_offset
    assert consumer._acked[KEPT] == [7] and consumer._active_partitions == {KEPT}


async def test_faust_drops_them_before_its_handler_commits():
    """The upstream flaw the override removes (UPSTREAM.md F21: removable when this fails)."""
    consumer, seen = consumer_with_acks(Consumer)
    await Consumer.on_partitions_revoked(consumer, {USERS})
    assert seen == [{USERS: ([], None)}]
