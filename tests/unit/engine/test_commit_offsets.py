"""A commit reads the offsets to commit only once it holds the commit gate (crownstream/engine/consumer.py,
UPSTREAM.md F24).

Faust's ``Consumer.force_commit`` reads the acknowledged offsets, then commits the transactions; a batch still being
processed when the offsets were read put its outputs into the transaction being committed and its offsets into the
next one. Here the consumer is the worker's, its transaction manager a stand-in that records what it is asked to
commit; no broker is involved (the ordering is all there is to it)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from crownstream.engine.commit_gate import CommitGate
from crownstream.engine.consumer import _Consumer
from crownstream.engine.state import EngineState, attach

USERS = TP("cs.notification-users", 7)
OTHER = TP("cs.notification-users", 3)
TID = "cs-0-7"


class Diag:
    def set_flag(self, flag: str) -> None: ...

    def unset_flag(self, flag: str) -> None: ...


class Log:
    def dev(self, *args: Any, **kwargs: Any) -> None: ...

    def info(self, *args: Any, **kwargs: Any) -> None: ...


class Attachments:
    async def publish_for_tp_offset(self, tp: TP, offset: int) -> list:
        return []


class App:
    def __init__(self) -> None:
        self.conf = SimpleNamespace(id="cs")
        self.assignor = SimpleNamespace(group_for_topic=lambda topic: 0)
        self.sensors = SimpleNamespace(on_commit_initiated=lambda consumer: None, on_commit_completed=lambda *a: None)
        self._attachments = Attachments()
        self.producer = None
        self.tables = SimpleNamespace(on_commit=lambda offsets: None)
        self.monitor = SimpleNamespace(on_tp_commit=lambda offsets: None)
        self.gate = CommitGate()
        attach(self, EngineState(settings=None, commit_gate=self.gate, state_repair=None))


class Transactions:
    """What ``InputPartitionTransactionManager.commit`` is asked to commit; ``gated`` enters the gate there, as it
    did before F24."""

    def __init__(self, app: App, gated: bool) -> None:
        self.app, self.gated, self.committed = app, gated, []

    async def commit(self, offsets: dict[TP, int], start_new_transaction: bool = True) -> bool:
        if self.gated:
            async with self.app.gate.committing([TID]):
                self.committed.append(dict(offsets))
        else:
            assert self.app.gate.gate(TID).committers, "committed outside the gate"
            self.committed.append(dict(offsets))
        return True


def consumer(cls: type, gated_transactions: bool) -> tuple[Any, App, Transactions]:
    """Events 10-12 of USERS processed and acknowledged since the committed offset 10; OTHER has nothing new."""
    app = App()
    consumer = object.__new__(cls)
    consumer.diag, consumer.log, consumer.app = Diag(), Log(), app
    consumer.in_transaction = True
    consumer.transactions = Transactions(app, gated_transactions)
    consumer.assignment = lambda: {USERS, OTHER}
    consumer._commit_fut = None
    consumer._gap = defaultdict(IntervalTree)
    consumer._acked = defaultdict(list, {USERS: [10, 11, 12], OTHER: []})
    consumer._acked_index = defaultdict(set, {USERS: {10, 11, 12}})
    consumer._committed_offset = defaultdict(lambda: None, {USERS: 10, OTHER: 4})
    return consumer, app, consumer.transactions


def acknowledge(consumer: Any, *offsets: int) -> None:
    consumer._acked[USERS].extend(offsets)
    consumer._acked_index[USERS].update(offsets)


async def commit_while_a_batch_is_inside(consumer: Any, app: App, force_commit: Any) -> None:
    """A commit tick comes while a batch of events 13-15 is being processed: the batch's outputs are in the
    transaction; when it is done its events are acknowledged and it leaves the gate (crownstream/engine/batches.py)."""
    hold = await app.gate.hold(TID)
    committing = asyncio.create_task(force_commit(consumer))
    await asyncio.sleep(0.01)
    assert consumer.transactions.committed == []  # waiting for the batch
    acknowledge(consumer, 13, 14, 15)
    app.gate.release(hold)
    assert await asyncio.wait_for(committing, 1) is True


async def test_a_commit_that_waited_for_a_batch_commits_its_offsets_with_its_outputs():
    consumer_, app, transactions = consumer(_Consumer, gated_transactions=False)
    await commit_while_a_batch_is_inside(consumer_, app, _Consumer.force_commit)
    assert transactions.committed == [{USERS: 16}]  # 10-15: every event whose outputs the transaction holds
    assert app.gate.gate(TID).committers == 0


async def test_faust_reads_the_offsets_before_the_gate():
    """The upstream order F24 replaces (removable when this fails: Faust reads the offsets after the transactions
    are quiet): the batch's outputs commit with the offset from before it."""
    consumer_, app, transactions = consumer(Consumer, gated_transactions=True)
    await commit_while_a_batch_is_inside(consumer_, app, Consumer.force_commit)
    assert transactions.committed == [{USERS: 13}]


async def test_nothing_acknowledged_takes_no_gate():
    consumer_, app, transactions = consumer(_Consumer, gated_transactions=False)
    consumer_._acked[USERS].clear()
    hold = await app.gate.hold(TID)  # a batch inside does not hold up a commit that has nothing to commit
    assert await asyncio.wait_for(_Consumer.force_commit(consumer_), 1) is False
    app.gate.release(hold)
    assert transactions.committed == []
