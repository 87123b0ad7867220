"""Committed offsets fetched stably (KIP-447): a new owner never reads offsets a transaction has not settled.

Under exactly-once a partition's offsets are committed inside its transaction (TxnOffsetCommit). When the
transaction commits, the transaction coordinator answers the producer as soon as it has logged the decision and
writes the commit markers afterwards — to the output partitions and to ``__consumer_offsets``. Until the marker
is there, the group coordinator holds those offsets as *pending*, and an OffsetFetch that does not ask for stable
offsets answers with the previous committed offset. A worker that is assigned the partition in that window
starts from the old offset and processes its previous owner's last events again: their outputs are committed
twice upstream (the operations scenario counted 0-52 such delivery requests per run, absorbed by the ledger).

OffsetFetch v7 adds ``require_stable``: while a partition has pending transactional offsets the broker answers
UNSTABLE_OFFSET_COMMIT instead, and the consumer retries until the transaction is settled (committed, aborted,
or aborted by the coordinator when the producer is fenced or its transaction times out). aiokafka 0.14 sends
OffsetFetch up to v3 and cannot ask; this module has the v7 request and response (flexible versions, from
Kafka's ``OffsetFetchRequest.json``) and a fetch that replaces the group coordinator's, so every committed-offset
fetch of the worker's consumer goes through it: aiokafka's own after an assignment and the engine's seek to the
committed offsets after recovery (``consumer_thread``). An UNSTABLE_OFFSET_COMMIT is a retriable error, and both
callers retry it after the consumer's ``retry_backoff_ms``, as Kafka's Java consumer does.

UPSTREAM.md row F19.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import aiokafka.errors as Errors
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)
from aiokafka.structs import OffsetAndMetadata

from crownstream.engine.errors import BrokerTooOldForStableOffsets, EngineError, UnstableOffsetCommitError
from crownstream.metrics import UNSTABLE_OFFSET_FETCHES

log = logging.getLogger(__name__)

#: OffsetFetch's API key, and the first version with ``require_stable`` (Kafka 2.5, KIP-447).
OFFSET_FETCH_API_KEY = 9
STABLE_OFFSET_FETCH_VERSION = 7
#: Kafka's UNSTABLE_OFFSET_COMMIT (aiokafka 0.14 has no class for it).
UNSTABLE_OFFSET_COMMIT = UnstableOffsetCommitError.errno
#: aiokafka's "no committed offset" (-1).
NO_OFFSET = -1


class OffsetFetchResponse_v7(Response):
    API_KEY = OFFSET_FETCH_API_KEY
    API_VERSION = STABLE_OFFSET_FETCH_VERSION
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                (
                    "partitions",
                    CompactArray(
                        ("partition_index", Int32),
                        ("committed_offset", Int64),
                        ("committed_leader_epoch", Int32),
                        ("metadata", CompactString("utf-8")),
                        ("error_code", Int16),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("error_code", Int16),
        ("tags", TaggedFields),
    )


class OffsetFetchRequest_v7(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = OFFSET_FETCH_API_KEY
    API_VERSION = STABLE_OFFSET_FETCH_VERSION
    RESPONSE_TYPE = OffsetFetchResponse_v7
    SCHEMA = Schema(
        ("group_id", CompactString("utf-8")),
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("partition_indexes", CompactArray(Int32)),
                ("tags", TaggedFields),
            ),
        ),
        ("require_stable", Boolean),
        ("tags", TaggedFields),
    )


class StableOffsetFetchRequest(Request[OffsetFetchRequest_v7]):
    """OffsetFetch with ``require_stable``. Only v7 is offered: a broker that cannot answer it gets a clear
    error instead of a silent fall back to the unstable read that exactly-once cannot afford."""

    API_KEY: ClassVar[int] = OFFSET_FETCH_API_KEY

    def __init__(self, group_id: str, partitions: list[tuple[str, list[int]]]) -> None:
        self._group_id = group_id
        self._partitions = partitions

    def prepare(self, versions: dict[int, tuple[int, int]]) -> OffsetFetchRequest_v7:
        supported = versions.get(OFFSET_FETCH_API_KEY)
        if supported is None or supported[1] < STABLE_OFFSET_FETCH_VERSION:
            answered = "no OffsetFetch version" if supported is None else f"OffsetFetch v{supported[0]}-v{supported[1]}"
            raise BrokerTooOldForStableOffsets(
                f"the group coordinator answers {answered}; exactly-once needs v{STABLE_OFFSET_FETCH_VERSION} "
                "(require_stable, KIP-447: Apache Kafka 2.5 or later) to read committed offsets that no open "
                "transaction still holds. Upgrade the brokers, or run the workers with "
                "CROWNSTREAM_PROCESSING_GUARANTEE=at_least_once."
            )
        return super().prepare(versions)

    def build(self, request_struct_class: type[OffsetFetchRequest_v7]) -> OffsetFetchRequest_v7:
        topics: list[tuple[str, list[int], dict[int, bytes]]] = [(t, ps, {}) for t, ps in self._partitions]
        return request_struct_class(self._group_id, topics, True, {})


def stable_request(group_id: str, partitions: Iterable[TopicPartition]) -> StableOffsetFetchRequest:
    by_topic: dict[str, list[int]] = collections.defaultdict(list)
    for tp in partitions:
        by_topic[tp.topic].append(tp.partition)
    return StableOffsetFetchRequest(group_id, sorted(by_topic.items()))


def _raise_for(coordinator: Any, error_type: type[Exception]) -> None:
    """Raise a group- or partition-level error as aiokafka's fetch does: a coordinator that moved is marked dead
    first, so the retry looks for the new one."""
    if error_type is Errors.NoError:
        return
    if error_type is Errors.NotCoordinatorForGroupError:
        coordinator.coordinator_dead()
    raise error_type()


def read_response(coordinator: Any, response: Any) -> dict[TopicPartition, OffsetAndMetadata]:
    """The committed offsets in an OffsetFetch v7 answer, aiokafka's way (no entry for a partition without
    one), or the error to retry on (or to give up with), as aiokafka's own fetch raises them."""
    _raise_for(coordinator, Errors.for_code(response.error_code))
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    unstable: list[TopicPartition] = []
    for topic, partitions, _tags in response.topics:
        for partition, offset, _leader_epoch, metadata, error_code, _ptags in partitions:
            tp = TopicPartition(topic, partition)
            if error_code == UNSTABLE_OFFSET_COMMIT:
                unstable.append(tp)
                continue
            error_type = Errors.for_code(error_code)
            if error_type is Errors.UnknownTopicOrPartitionError:
                log.warning("OffsetFetch: unknown topic or partition %s", tp)
                continue
            _raise_for(coordinator, error_type)
            if offset != NO_OFFSET:
                offsets[tp] = OffsetAndMetadata(offset, metadata or "")
    if unstable:
        UNSTABLE_OFFSET_FETCHES.inc()
        log.debug("committed offsets of %d partitions still pending in a transaction: %s", len(unstable), unstable)
        raise UnstableOffsetCommitError(f"{len(unstable)} partitions, e.g. {unstable[0]}")
    return offsets


async def fetch_stable(
    coordinator: GroupCoordinator, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """One stable OffsetFetch to the group coordinator; raises ``UnstableOffsetCommitError`` (retriable) while a
    transaction holds any of the partitions' offsets."""
    request = stable_request(coordinator.group_id, partitions)
    response = await coordinator._send_req(request)
    return read_response(coordinator, response)


def install_stable_offset_fetch(consumer: AIOKafkaConsumer) -> None:
    """Make every committed-offset fetch of ``consumer`` (started, in a group, not yet subscribed) stable."""
    coordinator = consumer._coordinator
    if not isinstance(coordinator, GroupCoordinator):
        raise EngineError("stable offset fetches need a started consumer with a group_id")
    if consumer._subscription.subscription is not None:
        # aiokafka may already have fetched committed offsets the unstable way for this assignment.
        raise EngineError("install the stable offset fetch before the consumer subscribes")
    # An instance attribute: the coordinator is built inside AIOKafkaConsumer.start, no class of ours can be put there.
    coordinator._do_fetch_commit_offsets = functools.partial(fetch_stable, coordinator)  # type: ignore[method-assign]
