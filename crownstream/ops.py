"""Operator commands' logic (``crownstream standings rebuild``, ``crownstream ops lag|assignment``).

Everything reads from Kafka as a plain consumer that joins no group and commits nothing, or from the
workers' HTTP API: an operator command never changes what the workers see.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata
from pydantic import ValidationError

from crownstream.schemas.codec import validate
from crownstream.settings import Settings, get_settings
from crownstream.standings.battle_royale import recompute
from crownstream.standings.br_inputs import Disqualification, Forfeit, MatchResult, Override
from crownstream.standings.br_scoring import TeamStanding
from crownstream.standings.rules import RuleSet
from crownstream.streams.partitioning import partition_for
from crownstream.streams.topics import TOURNAMENT_EVENTS

# --- standings rebuild -------------------------------------------------------------------------------------


@dataclass
class StageRecompute:
    stage_id: str
    standings: list[TeamStanding]
    matches: int
    skipped: list[str] = field(default_factory=list)


def recompute_tournament(events: list[dict[str, Any]], tournament_id: str) -> dict[str, StageRecompute]:
    """Battle-royale standings of every stage of the tournament, from scratch, by the pure engine.

    ``events`` are raw event objects in topic order (other tournaments' are ignored); records that do not
    validate are skipped, as the workers skip them (they went to the DLQ)."""
    rules: dict[str, RuleSet] = {}
    results: dict[str, list[MatchResult]] = {}
    overrides: dict[str, list[Override]] = {}
    dqs: dict[str, list[Disqualification]] = {}
    forfeits: dict[str, list[Forfeit]] = {}
    invalid: list[str] = []
    for raw in events:
        if raw.get("tournament_id") != tournament_id:
            continue
        try:
            e = validate(raw)
        except (ValidationError, ValueError) as exc:
            invalid.append(f"{raw.get('event_id')}: {str(exc).splitlines()[0]}")
            continue
        stage = getattr(e, "stage_id", None)
        if e.type == "stage.configured" and e.rules.format == "battle_royale":
            rules[stage] = RuleSet.from_dict(e.rules.model_dump(mode="json"))
        elif e.type == "match.completed" and e.result.format == "battle_royale":
            results.setdefault(stage, []).append(MatchResult.from_event(e))
        elif e.type == "result.overridden" and e.team_id is not None:
            overrides.setdefault(stage, []).append(Override.from_event(e))
        elif e.type == "team.disqualified":
            dqs.setdefault(stage, []).append(Disqualification.from_event(e))
        elif e.type == "match.forfeited" and e.series_id is None:
            forfeits.setdefault(stage, []).append(Forfeit(e.match_id, e.team_id))
    out = {}
    for stage, rule_set in rules.items():
        stage_results = results.get(stage, [])
        out[stage] = StageRecompute(
            stage,
            recompute(rule_set, stage_results, overrides.get(stage, ()), dqs.get(stage, ()), forfeits.get(stage, ())),
            matches=len({r.match_id for r in stage_results}),
            skipped=invalid,
        )
    return out


async def read_tournament_events(tournament_id: str, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every committed record of the tournament's partition of the tournament-events topic, decoded as JSON
    (records that are not JSON objects are left out: the workers dead-lettered them)."""
    settings = settings or get_settings()
    topic = TOURNAMENT_EVENTS.full_name(settings)
    tp = TopicPartition(topic, partition_for(tournament_id, TOURNAMENT_EVENTS.partition_count(settings)))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            raise LookupError(f"topic {topic} does not exist: check CROWNSTREAM_TOPIC_PREFIX and the broker")
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        records: list[dict[str, Any]] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, ()):
                try:
                    value = json.loads(record.value)
                except (TypeError, ValueError):
                    continue
                if isinstance(value, dict):
                    records.append(value)
        return records
    finally:
        await consumer.stop()


def live_standings(worker_url: str, tournament_id: str, stage_id: str) -> list[dict[str, Any]] | None:
    """The standings a worker serves (any worker: the query is routed to the owner); None if it has none."""
    r = httpx.get(
        f"{worker_url.rstrip('/')}/tournaments/{tournament_id}/standings",
        params={"stage": stage_id, "limit": 1000},
        timeout=10,
    )
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()["standings"]


def live_group_standings(worker_url: str, tournament_id: str, stage_id: str) -> list[dict[str, Any]] | None:
    """The standings a worker serves for a series-group, Swiss or bracket stage; None if it has none."""
    r = httpx.get(f"{worker_url.rstrip('/')}/tournaments/{tournament_id}/groups/{stage_id}", timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()["standings"]


def compare(expected: list[TeamStanding], served: list[dict[str, Any]] | None) -> list[str]:
    """Differences between a recompute and what a worker serves, one line each (empty: they agree)."""
    if served is None:
        return ["the worker has no standings for this stage"]
    problems = []
    for rank, (want, got) in enumerate(zip(expected, served, strict=False), start=1):  # lengths compared below
        if (want.team_id, want.total_points) != (got["team_id"], got["total_points"]):
            problems.append(
                f"rank {rank}: recompute {want.team_id} {want.total_points} pts, "
                f"worker {got['team_id']} {got['total_points']} pts"
            )
    if len(expected) != len(served):
        problems.append(f"recompute ranks {len(expected)} teams, the worker {len(served)}")
    return problems


# --- consumer group: lag and assignment -------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed an offset here
    start: int
    end: int

    @property
    def lag(self) -> int:
        # Never committed: the group starts from the earliest record (auto_offset_reset=earliest).
        return max(0, self.end - (self.committed if self.committed is not None else self.start))


async def group_lag(settings: Settings | None = None) -> list[PartitionLag]:
    """Committed offsets of the workers' consumer group against the end of each partition of every topic
    it has committed to — including partitions it never committed to, which would otherwise be invisible."""
    settings = settings or get_settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
        tps: set[TopicPartition] = set(offsets)
        topics = sorted({tp.topic for tp in offsets})
        for described in await admin.describe_topics(topics) if topics else []:
            tps |= {TopicPartition(described["topic"], p["partition"]) for p in described["partitions"]}
        ordered = sorted(tps)
        if not ordered:
            return []
        starts = await consumer.beginning_offsets(ordered)
        ends = await consumer.end_offsets(ordered)  # read_committed: the last stable offset
        committed = {tp: offsets[tp].offset for tp in ordered if tp in offsets and offsets[tp].offset >= 0}
        rows = [PartitionLag(tp.topic, tp.partition, committed.get(tp), starts[tp], ends[tp]) for tp in ordered]
        settled = await _only_markers_left(consumer, {TopicPartition(r.topic, r.partition): r for r in rows if r.lag})
        return [
            PartitionLag(r.topic, r.partition, r.end, r.start, r.end)
            if TopicPartition(r.topic, r.partition) in settled
            else r
            for r in rows
        ]
    finally:
        await consumer.stop()
        await admin.close()


async def _only_markers_left(
    consumer: AIOKafkaConsumer, lagging: dict[TopicPartition, PartitionLag], timeout: float = 5.0
) -> set[TopicPartition]:
    """Partitions whose remaining offsets hold no committed record — only transaction markers or aborted
    records, which take offsets but are never delivered: a group that processed everything still shows a
    lag of 1 after each transaction on topics written with exactly_once. Reads at most one fetch each."""
    if not lagging:
        return set()
    consumer.assign(list(lagging))
    for tp, row in lagging.items():
        consumer.seek(tp, row.committed if row.committed is not None else row.start)
    undecided = set(lagging)
    settled: set[TopicPartition] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while undecided and loop.time() < deadline:
        batch = await consumer.getmany(*undecided, timeout_ms=500, max_records=len(undecided))
        for tp, records in batch.items():
            if any(r.offset < lagging[tp].end for r in records):
                undecided.discard(tp)  # a real record is waiting: the lag stands
        for tp in list(undecided):
            if tp not in batch and await consumer.position(tp) >= lagging[tp].end:
                undecided.discard(tp)
                settled.add(tp)
    return settled


@dataclass
class Member:
    member_id: str
    client_host: str
    url: str | None
    partitions: dict[str, list[int]]


def decode_member(member: dict[str, Any]) -> Member:
    """A group member as the broker describes it, with Faust's metadata (the worker's URL) decoded."""
    url = None
    try:
        metadata = ConsumerProtocolMemberMetadata.decode(member["member_metadata"])
        url = json.loads(metadata.user_data).get("url")
    except Exception:  # not a Faust member (someone else's consumer in the group): show it without a URL
        pass
    partitions: dict[str, list[int]] = {}
    if member["member_assignment"]:
        assignment = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
        for topic, parts in assignment.assignment:
            partitions[topic] = sorted(parts)
        if url is None and assignment.user_data:
            try:
                url = json.loads(zlib.decompress(assignment.user_data)).get("url")
            except Exception:
                pass
    return Member(member["member_id"], member["client_host"], url, partitions)


async def group_members(settings: Settings | None = None) -> tuple[str, list[Member]]:
    """The group's state and its members with the partitions the broker assigned each."""
    settings = settings or get_settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([settings.app_id])
        group = response.to_object()["groups"][0]
        return group["state"], [decode_member(m) for m in group["members"]]
    finally:
        await admin.close()


def worker_assignment(url: str, staff_token: str | None = None) -> dict[str, Any] | None:
    """A worker's own view (/ops/assignment, staff only): actives, standbys and lag; None if it does not answer
    (or refuses: no or wrong staff token)."""
    token = staff_token if staff_token is not None else get_settings().staff_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.get(f"{url.rstrip('/')}/ops/assignment", headers=headers, timeout=5)
        r.raise_for_status()
        return r.json()
    except httpx.HTTPError:
        return None
