from crownstream.engine.topic_declarations import every_partition_led


class Metadata:
    """The two questions the check asks of aiokafka's ClusterMetadata, answered from a dict."""

    def __init__(self, leaders: dict[str, dict[int, int]]) -> None:
        self.leaders = leaders

    def partitions_for_topic(self, topic):
        return set(self.leaders[topic]) if topic in self.leaders else None

    def leader_for_partition(self, tp):
        return self.leaders.get(tp.topic, {}).get(tp.partition)


def test_a_topic_is_visible_once_every_partition_has_a_leader_even_broker_0():
    assert every_partition_led(Metadata({"t": {0: 0, 1: 0}}), "t", 2)
    assert every_partition_led(Metadata({"t": {0: 1, 1: 2}}), "t", 2)


def test_a_missing_topic_partition_or_leader_is_not_visible_yet():
    assert not every_partition_led(Metadata({}), "t", 2)
    assert not every_partition_led(Metadata({"t": {0: 0}}), "t", 2)
    assert not every_partition_led(Metadata({"t": {0: 0, 1: -1}}), "t", 2)
