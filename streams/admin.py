"""Create or check Crownstream's topics against the registry (``crownstream topics create``), and the check a
worker makes before it starts: no topic it uses replicated fewer times than ``CROWNSTREAM_TOPIC_REPLICATION``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from crownstream.settings import Settings, get_settings
from crownstream.streams.errors import BrokerUnavailable
from crownstream.streams.topics import ALL_TOPICS, TopicSpec


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    status: str  # created | ok | partition_mismatch | under_replicated
    partitions: int
    expected_partitions: int
    replication: int = 0
    expected_replication: int = 0

    def line(self) -> str:
        if self.status == "partition_mismatch":
            return (
                f"{self.name}: has {self.partitions} partitions, the registry says {self.expected_partitions}. "
                "Keys would map to different partitions than co-partitioned topics; recreate it or set "
                "CROWNSTREAM_TOPIC_PARTITIONS to match"
            )
        if self.status == "under_replicated":
            return (
                f"{self.name}: replication factor {self.replication}, CROWNSTREAM_TOPIC_REPLICATION is "
                f"{self.expected_replication}. Workers refuse to start; {RAISE_THE_FACTOR}"
            )
        return f"{self.name}: {self.status} ({self.partitions} partitions, replication factor {self.replication})"


#: What to do about a topic replicated fewer times than configured (in the worker's refusal and the topics report).
RAISE_THE_FACTOR = (
    "raise its factor (kafka-reassign-partitions.sh with a replica list per partition), or recreate it, or set "
    "CROWNSTREAM_TOPIC_REPLICATION to the factor the topics have"
)


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """An existing topic as the broker describes it."""

    partitions: int
    replication: int  # the fewest replicas any of its partitions has (assigned replicas, not the ones in sync)


@dataclass(frozen=True, slots=True)
class UnderReplicated:
    topic: str
    replication: int


def under_replicated(
    layouts: Mapping[str, TopicLayout], needed: Iterable[str], replication: int
) -> list[UnderReplicated]:
    """The topics of ``needed`` that exist with fewer replicas than ``replication``, by name. A topic that does not
    exist yet is not one: whoever creates it creates it with the configured factor."""
    found = (UnderReplicated(name, layouts[name].replication) for name in set(needed) if name in layouts)
    return sorted((u for u in found if u.replication < replication), key=lambda u: u.topic)


def replication_refusal(found: list[UnderReplicated], replication: int) -> str:
    """Why a worker refuses to start: every under-replicated topic it needs, with its factor."""
    lines = "\n".join(f"  {u.topic}: replication factor {u.replication}" for u in found)
    return (
        f"refusing to start: {len(found)} topic{'s' if len(found) != 1 else ''} it uses "
        f"{'are' if len(found) != 1 else 'is'} replicated fewer times than CROWNSTREAM_TOPIC_REPLICATION="
        f"{replication}:\n{lines}\n"
        "Each partition of such a topic is lost with fewer brokers than configured, acknowledged writes with it. "
        f"For each: {RAISE_THE_FACTOR}."
    )


async def ensure_topics(
    specs: tuple[TopicSpec, ...] = ALL_TOPICS, settings: Settings | None = None
) -> list[TopicReport]:
    """Create missing topics (with the configured replication factor and min.insync.replicas); report the
    partition count and replication factor of existing ones. Idempotent."""
    settings = settings or get_settings()
    admin = await _started_admin(settings)
    try:
        existing = await topic_layouts(admin)
        reports: list[TopicReport] = []
        to_create = [s for s in specs if s.full_name(settings) not in existing]
        if to_create:
            new = [
                NewTopic(
                    name=s.full_name(settings),
                    num_partitions=s.partition_count(settings),
                    replication_factor=settings.topic_replication,
                    topic_configs={**settings.topic_configs(), **s.config()},
                )
                for s in to_create
            ]
            try:
                await admin.create_topics(new, timeout_ms=30_000)
            except TopicAlreadyExistsError:
                pass  # another worker won the race; the check below still reports the truth
            existing = await _until_listed(admin, {t.name for t in new})
        created = {s.full_name(settings) for s in to_create}
        for spec in specs:
            name = spec.full_name(settings)
            want = spec.partition_count(settings)
            have = existing.get(name, TopicLayout(0, 0))
            if have.partitions != want:
                status = "partition_mismatch"
            elif have.replication < settings.topic_replication:
                status = "under_replicated"
            else:
                status = "created" if name in created else "ok"
            reports.append(
                TopicReport(name, status, have.partitions, want, have.replication, settings.topic_replication)
            )
        return reports
    finally:
        await admin.close()


async def check_replication(needed: Iterable[str], settings: Settings | None = None) -> list[UnderReplicated]:
    """The topics of ``needed`` that exist replicated fewer times than ``CROWNSTREAM_TOPIC_REPLICATION`` (a worker
    refuses to start while there is one). With a factor of 1 configured there can be none: no request is made."""
    settings = settings or get_settings()
    if settings.topic_replication <= 1:
        return []
    admin = await _started_admin(settings)
    try:
        return under_replicated(await topic_layouts(admin), needed, settings.topic_replication)
    finally:
        await admin.close()


async def _until_listed(admin: AIOKafkaAdminClient, names: set[str], timeout: float = 30.0) -> dict[str, TopicLayout]:
    """The topic layouts once ``names`` are all in them: the controller answers CreateTopics before every broker
    lists the new topics (on a three-broker cluster the next metadata request often does not)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        layouts = await topic_layouts(admin)
        if names <= layouts.keys() or loop.time() > deadline:
            return layouts  # past the deadline the report says what is missing (0 partitions)
        await asyncio.sleep(0.2)


async def _started_admin(settings: Settings) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise BrokerUnavailable(settings.kafka_bootstrap, exc) from exc
    return admin


async def topic_layouts(admin: AIOKafkaAdminClient) -> dict[str, TopicLayout]:
    """Every topic the broker lists, with its partition count and replication factor."""
    names = await admin.list_topics()
    if not names:
        return {}
    described = await admin.describe_topics(list(names))
    return {
        d["topic"]: TopicLayout(len(d["partitions"]), min((len(p["replicas"]) for p in d["partitions"]), default=0))
        for d in described
        if not d.get("error_code")
    }
