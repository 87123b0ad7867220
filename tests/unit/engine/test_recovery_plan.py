from types import SimpleNamespace

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import Consumer as FaustAiokafkaConsumer
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from crownstream.engine.consumer import _Consumer
from crownstream.engine.recovery import ChangelogRecord, RestoringRecovery, plan_restore
from crownstream.engine.table_manager import ChangelogQueue

A, B, C, D = (TP("app-stages-changelog", p) for p in range(4))


def test_restore_starts_after_the_last_applied_change_and_skips_what_is_complete():
    plan, ahead = plan_restore({A: 41, B: None, C: 9, D: -1}, {A: 50, B: 7, C: 10, D: 0})
    assert plan.starts == {A: 42, B: 0, C: 10, D: 0}
    # C already holds the last offset before its end: nothing to read; D is an empty partition.
    assert plan.pending() == {A: 42, B: 0}
    assert ahead == set()


def test_local_state_past_the_committed_end_is_restored_from_the_start():
    plan, ahead = plan_restore({A: 60, B: 3}, {A: 50, B: 10})
    assert ahead == {A}
    assert plan.starts[A] == 0 and plan.pending() == {A: 0, B: 4}


def test_changelog_record_reads_like_a_faust_event_to_the_store():
    record = ChangelogRecord(B, 17, b'"k"', None)
    assert record.message.tp == B and record.message.partition == 1 and record.message.offset == 17
    assert record.message.value is None


async def test_changelog_queue_keeps_events_only_through_a_clear_it_is_told_to_survive():
    flow = FlowControlEvent(initially_suspended=False)
    queue = ChangelogQueue(flow_control=flow, clear_on_resume=True)
    await queue.put("standby record fetched after its seek")
    queue.keep_through_clear = True
    flow.resume()  # Faust resuming the streams after recovery
    assert queue.qsize() == 1
    queue.keep_through_clear = False
    flow.clear()  # a revocation
    assert queue.qsize() == 0


def _completing_recovery(monkeypatch, generation_after: int):
    """A RestoringRecovery around Faust's on_recovery_completed, faked as its steps: resume the stream
    partitions, seek them, clear the stream queues (flow control resume). Returns it and the step log."""
    steps: list[str] = []
    consumer = _Consumer.__new__(_Consumer)
    monkeypatch.setattr(
        FaustAiokafkaConsumer, "resume_partitions", lambda self, tps: steps.append(f"resume {sorted(tps)}")
    )
    app = SimpleNamespace(consumer=consumer, consumer_generation_id=3)

    async def faust_on_recovery_completed(self, generation_id=0):
        consumer.resume_partitions({"events-0"})
        steps.append("seek to committed")
        steps.append("clear stream queues")
        app.consumer_generation_id = generation_after

    monkeypatch.setattr(Recovery, "on_recovery_completed", faust_on_recovery_completed)
    recovery = RestoringRecovery.__new__(RestoringRecovery)
    recovery.app = app
    recovery.tables = SimpleNamespace(
        changelog_queue=ChangelogQueue(flow_control=FlowControlEvent(), clear_on_resume=True)
    )
    return recovery, steps


async def test_streams_resume_only_after_their_seek_and_the_clear_of_their_queues(monkeypatch):
    recovery, steps = _completing_recovery(monkeypatch, generation_after=3)
    await recovery.on_recovery_completed(generation_id=3)
    # Resumed before the seek, what was fetched from the sought positions would be cleared with the queues.
    assert steps == ["seek to committed", "clear stream queues", "resume ['events-0']"]
    recovery.app.consumer.resume_partitions({"events-1"})  # resumes are no longer held back
    assert steps[-1] == "resume ['events-1']"


async def test_streams_stay_paused_when_the_group_rebalanced_meanwhile(monkeypatch):
    recovery, steps = _completing_recovery(monkeypatch, generation_after=4)
    await recovery.on_recovery_completed(generation_id=3)
    assert steps == ["seek to committed", "clear stream queues"]  # the next round resumes them
