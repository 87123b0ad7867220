from faust.types import TP
from mode.utils.queues import FlowControlEvent

from crownstream.recovery import ChangelogQueue, ChangelogRecord, plan_restore

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
