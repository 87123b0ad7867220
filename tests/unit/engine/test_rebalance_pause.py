from crownstream.engine.rebalance_pause import RebalancePause


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pause_runs_from_the_revocation_to_the_first_event_of_the_new_generation():
    clock = Clock()
    pause = RebalancePause(clock)
    pause.revoked(partitions=4, generation=3)
    clock.now += 0.4
    assert pause.processing(generation=3) is None  # an event of the old generation still in hand ends nothing
    clock.now += 0.8
    paused = pause.processing(generation=4)
    assert paused is not None and abs(paused - 1.2) < 1e-9
    clock.now += 5
    assert pause.processing(generation=4) is None  # one pause per rebalance


def test_back_to_back_rebalances_are_one_pause_from_the_first_revocation():
    clock = Clock()
    pause = RebalancePause(clock)
    pause.revoked(partitions=4, generation=3)
    clock.now += 1
    pause.revoked(partitions=2, generation=4)  # a second rebalance before any event was processed
    clock.now += 1
    paused = pause.processing(generation=5)
    assert paused is not None and abs(paused - 2.0) < 1e-9


def test_a_worker_that_held_nothing_has_no_pause_to_report():
    pause = RebalancePause(Clock())
    pause.revoked(partitions=0, generation=1)
    assert pause.processing(generation=2) is None
