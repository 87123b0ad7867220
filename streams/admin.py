"""Create or check Crownstream's topics against the registry (``crownstream topics create``)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from crownstream.settings import Settings, get_settings
from crownstream.streams.errors import BrokerUnavailable
from crownstream.streams.topics import ALL_TOPICS, TopicSpec


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    status: str  # created | ok | partition_mismatch
    partitions: int
    expected_partitions: int

    def line(self) -> str:
        if self.status == "partition_mismatch":
            return (
                f"{self.name}: has {self.partitions} partitions, the registry says {self.expected_partitions}. "
                "Keys would map to different partitions than co-partitioned topics; recreate it or set "
                "CROWNSTREAM_TOPIC_PARTITIONS to match"
            )
        return f"{self.name}: {self.status} ({self.partitions} partitions)"


async def ensure_topics(
    specs: tuple[TopicSpec, ...] = ALL_TOPICS, settings: Settings | None = None
) -> list[TopicReport]:
    """Create missing topics; report the partition count of existing ones. Idempotent."""
    settings = settings or get_settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise BrokerUnavailable(settings.kafka_bootstrap, exc) from exc
    try:
        existing = await _partition_counts(admin)
        reports: list[TopicReport] = []
        to_create = [s for s in specs if s.full_name(settings) not in existing]
        if to_create:
            new = [
                NewTopic(
                    name=s.full_name(settings),
                    num_partitions=s.partition_count(settings),
                    replication_factor=settings.topic_replication,
                    topic_configs=s.config(),
                )
                for s in to_create
            ]
            try:
                await admin.create_topics(new, timeout_ms=30_000)
            except TopicAlreadyExistsError:
                pass  # another worker won the race; the check below still reports the truth
            existing = await _partition_counts(admin)
        created = {s.full_name(settings) for s in to_create}
        for spec in specs:
            name = spec.full_name(settings)
            want = spec.partition_count(settings)
            have = existing.get(name, 0)
            status = "partition_mismatch" if have != want else ("created" if name in created else "ok")
            reports.append(TopicReport(name, status, have, want))
        return reports
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    names = await admin.list_topics()
    if not names:
        return {}
    described = await admin.describe_topics(list(names))
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
