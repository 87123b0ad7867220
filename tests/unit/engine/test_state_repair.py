"""Which transactions leave local table state ahead of the changelog (crownstream/engine/state_repair.py); the
broker-level behaviour is in tests/integration/test_transaction_abort.py."""

from __future__ import annotations

from crownstream.engine.state_repair import StateRepair, partition_of


def test_partition_of_faust_transactional_ids():
    assert partition_of("cs-app-1-7") == 7
    assert partition_of("my-app-with-dashes-0-12") == 12


def test_only_transactions_holding_sends_make_state_corrupt():
    repair = StateRepair(app=None)
    assert not repair.ended_without_commit("a-0-1", "stopped", "rebalance")  # nothing sent: nothing to repair
    repair.sent("a-0-1")
    repair.committed("a-0-1")
    assert not repair.ended_without_commit("a-0-1", "stopped", "rebalance")  # its sends were committed
    repair.sent("a-0-2")
    assert repair.ended_without_commit("a-0-2", "aborted", "fenced")
    assert repair.is_corrupt("a-0-2") and not repair.is_corrupt("a-0-1")
    assert "a-0-2" not in repair.dirty


def test_the_first_cause_is_kept():
    repair = StateRepair(app=None)
    repair.sent("a-0-3")
    repair.ended_without_commit("a-0-3", "aborted", "transaction aborted")
    repair.sent("a-0-3")  # events processed on the corrupt state before the rebalance
    repair.ended_without_commit("a-0-3", "stopped", "rebalance")
    assert repair.corrupt["a-0-3"] == ("aborted", "transaction aborted")


def test_fault_hook_fires_once_after_n_sends_and_only_for_a_commit_holding_sends():
    repair = StateRepair(app=None, fault_sends_left=2)
    repair.sent("a-0-1")
    assert not repair.take_fault(["a-0-1"])
    repair.sent("a-0-1")
    assert not repair.take_fault(["a-0-9"])  # nothing of a-0-9 to abort: stays armed
    assert repair.take_fault(["a-0-1", "a-0-9"])
    repair.sent("a-0-1")
    assert not repair.take_fault(["a-0-1"])


def test_fault_hook_off_by_default():
    repair = StateRepair(app=None)
    for _ in range(100):
        repair.sent("a-0-1")
    assert not repair.take_fault(["a-0-1"])
