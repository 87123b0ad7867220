"""The stable OffsetFetch's request and answer, without a broker (the broker's side is in
tests/integration/test_stable_offset_fetch.py)."""

from io import BytesIO

import aiokafka.errors as Errors
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from crownstream.engine.errors import BrokerTooOldForStableOffsets, UnstableOffsetCommitError
from crownstream.engine.offset_fetch import OffsetFetchRequest_v7, OffsetFetchResponse_v7, read_response, stable_request


class Coordinator:
    dead = 0

    def coordinator_dead(self) -> None:
        self.dead += 1


def answer(*partitions: tuple[str, int, int, int], error: int = 0) -> OffsetFetchResponse_v7:
    """An OffsetFetch v7 answer, through the wire format: (topic, partition, offset, error_code) per partition."""
    topics: dict[str, list] = {}
    for topic, partition, offset, code in partitions:
        topics.setdefault(topic, []).append((partition, offset, -1, "", code, {}))
    response = OffsetFetchResponse_v7(0, [(t, ps, {}) for t, ps in topics.items()], error, {})
    return OffsetFetchResponse_v7.decode(BytesIO(response.encode()))


def test_the_request_asks_for_stable_offsets_of_each_topics_partitions_in_v7():
    request = stable_request("group", [TopicPartition("b", 1), TopicPartition("a", 0), TopicPartition("b", 0)])
    struct = request.prepare({9: (0, 9)})
    assert isinstance(struct, OffsetFetchRequest_v7) and struct.FLEXIBLE_VERSION
    decoded = OffsetFetchRequest_v7.SCHEMA.decode(BytesIO(struct.encode()))
    assert decoded == ("group", [("a", [0], {}), ("b", [1, 0], {})], True, {})


@pytest.mark.parametrize("versions", [{9: (0, 6)}, {}])
def test_a_broker_without_stable_offset_fetches_is_refused_with_what_to_do(versions):
    with pytest.raises(BrokerTooOldForStableOffsets, match=r"Kafka 2\.5 or later.*at_least_once"):
        stable_request("group", [TopicPartition("a", 0)]).prepare(versions)


def test_committed_offsets_are_read_and_a_partition_without_one_is_left_out():
    offsets = read_response(Coordinator(), answer(("a", 0, 42, 0), ("a", 1, -1, 0), ("b", 3, 7, 0)))
    assert offsets == {
        TopicPartition("a", 0): OffsetAndMetadata(42, ""),
        TopicPartition("b", 3): OffsetAndMetadata(7, ""),
    }


def test_an_offset_still_pending_in_a_transaction_is_a_retriable_error_for_the_whole_fetch():
    with pytest.raises(UnstableOffsetCommitError) as raised:
        read_response(Coordinator(), answer(("a", 0, 42, 0), ("a", 1, -1, 88)))
    assert raised.value.retriable and isinstance(raised.value, Errors.KafkaError)


def test_a_coordinator_that_moved_is_marked_dead_so_the_retry_finds_the_new_one():
    coordinator = Coordinator()
    with pytest.raises(Errors.NotCoordinatorForGroupError):
        read_response(coordinator, answer(("a", 0, -1, 0), error=Errors.NotCoordinatorForGroupError.errno))
    assert coordinator.dead == 1
    with pytest.raises(Errors.GroupLoadInProgressError):
        read_response(coordinator, answer(("a", 0, -1, Errors.GroupLoadInProgressError.errno)))
