"""The upstream contract: every faust-streaming / aiokafka / mode name Crownstream overrides, calls or reads
privately still exists on the installed packages, with the parameters the fix expects, and the installed
versions are ones the suite has run against.

A failure names the fix that breaks (its row in UPSTREAM.md, at the repository root). Bumping a pin: run this
test first, then the whole suite; see UPSTREAM.md.

Import only: no broker, no database, no app (importing ``crownstream.app`` would create one and install the engine,
which patches aiokafka, so app.py, the agents and the views are read with ``ast``, not imported; the engine
package's modules are imported, which patches nothing).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Versions the whole suite (unit, integration, operations scenario) has passed against. Add a version here
#: only after that suite has passed on it (UPSTREAM.md, "Bumping a pin").
TESTED_VERSIONS = {
    "faust-streaming": {"0.15.3"},
    "aiokafka": {"0.14.0"},
    "mode-streaming": {"0.7.1"},
}

#: The rows of UPSTREAM.md.
FIXES = {
    "F1": "outputs in the input partition's transaction (crownstream/engine/transactions.py)",
    "F2": "a producer-buffer flush that drains (crownstream/engine/producer_buffer.py)",
    "F3": "the commit gate: no commit between two effects of one event (crownstream/engine/commit_gate.py)",
    "F4": "a transaction of their own for offsets committed after faust ended the transactions (SIGTERM)",
    "F5": "transactional producers re-initialised on every rebalance (InputPartitionTransactionManager.on_rebalance)",
    "F6": "changelog highwaters asked of the broker (_LsoFromBrokerConsumerThread._highwaters)",
    "F7": "stream partitions sought to their committed offsets in one request, never-committed ones to 0",
    "F8": "records fetched before their partition's seek are dropped (crownstream/engine/seek_epochs.py)",
    "F9": "recovery's standby seek skips unknown offsets and unassigned partitions (_seek_wait)",
    "F10": "the livelock detector skips a partition awaiting its offset reset (verify_event_path)",
    "F11": "active tables restored by a restore consumer of their own (crownstream/engine/recovery.py)",
    "F12": "streams resumed only after their seek and the clear of their queues (on_recovery_completed)",
    "F13": "the changelog queue keeps standby records through the post-recovery clear (ChangelogQueue)",
    "F14": "changelog offsets persisted on commit under exactly_once (RestoringTableManager.on_commit)",
    "F15": "local state of a transaction ended without a commit is wiped and restored "
    "(crownstream/engine/state_repair.py)",
    "F16": "aiokafka clients that lost every broker bootstrap again (crownstream/engine/kafka_rebootstrap.py)",
    "F17": "topics declared once (crownstream/engine/topic_declarations.py)",
    "F18": "Faust's own unauthenticated web views off (crownstream/app.py CrownstreamWeb)",
    "F19": "committed offsets fetched stably, OffsetFetch v7 require_stable (crownstream/engine/offset_fetch.py)",
    "F20": "an offset gap recorded without the record that follows it (crownstream/engine/consumer.py _add_gap)",
    "F21": "revoked partitions' acked offsets kept for the revocation's last commit (_Consumer.on_partitions_revoked)",
    "F22": "a transactional producer looks its coordinator up again after a dropped connection, and one fenced "
    "or failed loses its transaction instead of crashing the worker (coordinator_lookup.py, producer.py)",
    "F23": "RocksDB stores without a full garbage collection per table per rebalance (crownstream/engine/stores.py)",
    "F24": "a commit reads the offsets to commit only once it holds the commit gate (_Consumer.force_commit)",
    "F25": "the fetch loop wakes when partitions resume, polls at most the long poll (_Consumer._wait_next_records)",
    "F26": "a partition's RocksDB database opened at assignment only if it is on disk (crownstream/engine/stores.py)",
    "B1": "micro-batches: a partition's delivered events under one gate hold (crownstream/engine/batches.py)",
    "B2": "the micro-batch write cache in front of every table (crownstream/engine/write_cache.py)",
    "W": "the seams that install the fixes (crownstream/engine/install.py, CrownstreamTransport)",
    "D1": "no fix: /ops/assignment reads two private fields (web/views.py)",
    "D2": "no fix: a broadcast walks one table partition's RocksDB store (agents/notifications_users.py)",
    "P": "no fix: public hooks our services and views override (agents/deliveries.py, web/)",
}


@dataclass(frozen=True)
class Use:
    """One upstream name our code relies on.

    kind: ``override`` (we define it in a subclass or patch it: parameter names must match exactly),
    ``call`` (we call it: the parameters we pass must still be there), ``attr`` (class attribute, property or
    instance attribute we read or replace), ``source`` (the upstream function still does what the fix works
    around or hooks into: its source contains ``text``), ``value`` (a value our code reproduces)."""

    fixes: str
    where: str  # "module:Class" or "module"
    name: str
    kind: str
    params: tuple[str, ...] | None = None
    flavour: str | None = None  # "coro", "asyncgen" or "sync" for overrides
    text: str | None = None  # for source / value

    def __str__(self) -> str:
        return f"{self.where}.{self.name} ({self.kind})"


FAUST_TM = "faust.transport.consumer:TransactionManager"
FAUST_CONSUMER = "faust.transport.consumer:Consumer"
FAUST_DELEGATE = "faust.transport.consumer:ThreadDelegateConsumer"
AIO_DRIVER = "faust.transport.drivers.aiokafka"
THREAD = f"{AIO_DRIVER}:AIOKafkaConsumerThread"
PRODUCER = f"{AIO_DRIVER}:Producer"
BUFFER = "faust.transport.producer:ProducerBuffer"
RECOVERY = "faust.tables.recovery:Recovery"
TABLES = "faust.tables.manager:TableManager"
ROCKSDB = "faust.stores.rocksdb:Store"
AIO_CONSUMER = "aiokafka:AIOKafkaConsumer"
AIO_PRODUCER = "aiokafka:AIOKafkaProducer"
AIO_CLIENT = "aiokafka.client:AIOKafkaClient"
SUBSCRIPTION = "aiokafka.consumer.subscription_state"
GROUP_COORDINATOR = "aiokafka.consumer.group_coordinator:GroupCoordinator"
SEND = ("topic", "key", "value", "partition", "timestamp", "headers", "transactional_id")

CONTRACT: list[Use] = [
    # F1 outputs in the input partition's transaction
    Use("F1", FAUST_TM, "send", "override", SEND, "coro"),
    Use("F1", FAUST_TM, "producer", "attr"),
    Use("F1", FAUST_TM, "consumer", "attr"),
    Use("F1", f"{AIO_DRIVER}:Consumer", "key_partition", "call", ("topic", "key", "partition")),
    Use("F1", "faust.streams", "current_event", "call", ()),
    Use("F1", "faust.exceptions", "ProducerSendError", "attr"),
    Use("F1 F4 F5 F15", PRODUCER, "_transaction_producers", "attr"),
    Use("F1 F4", PRODUCER, "_trn_locks", "attr"),
    Use("F1", AIO_PRODUCER, "send", "source", text="self._message_accumulator.add_message("),
    Use("F1", AIO_PRODUCER, "_serialize", "call", ("key", "value", "headers")),
    Use("F1", AIO_PRODUCER, "_message_accumulator", "attr"),
    Use("F1", AIO_PRODUCER, "_request_timeout_ms", "attr"),
    Use("F1", AIO_PRODUCER, "_txn_manager", "attr"),
    Use("F1", AIO_CLIENT, "_wait_on_metadata", "call", ("topic",)),
    Use(
        "F1",
        "aiokafka.producer.message_accumulator:MessageAccumulator",
        "add_message",
        "call",
        ("tp", "key", "value", "timeout"),
    ),
    Use("F1", "aiokafka.producer.transaction_manager:TransactionManager", "is_in_transaction", "call", ()),
    Use("F1 F3 F15", FAUST_TM, "transactional_id_format", "value", text="{group_id}-{tpg.group}-{tpg.partition}"),
    Use("F1 F3", "faust.assignor.partition_assignor:PartitionAssignor", "group_for_topic", "call", ("topic",)),
    # B1 micro-batches: what Faust's Stream._py_aiter does per event, for the events taken from the channel
    Use("B1", "faust.streams", "_current_event", "attr"),
    Use("B1", "faust.streams:Stream", "events", "call", ()),
    Use("B1", "faust.streams:Stream", "ack", "call", ("event",)),
    Use("B1", "faust.streams:Stream", "channel", "attr"),
    Use("B1", "faust.streams:Stream", "events_total", "attr"),
    Use("B1", "faust.streams:Stream", "enable_acks", "attr"),
    # Faust acknowledges what its iterator yielded only when asked for the next one, if acks are on then.
    Use("B1", "faust.streams:Stream", "_py_aiter", "source", text="do_ack = self.enable_acks"),
    Use(
        "B1",
        "faust.streams:Stream",
        "_py_aiter",
        "source",
        text="message.generation_id != self.app.consumer_generation_id",
    ),
    Use("B1", "faust.streams:Stream", "_py_aiter", "source", text="add_unacked(message)"),
    Use("B1", "faust.channels:Channel", "queue", "attr"),
    Use("B1", "mode.utils.queues:ThrowableQueue", "get_nowait", "call", ()),
    Use("B1", FAUST_CONSUMER, "track_message", "call", ("message",)),
    Use("B1", "faust.types.settings.settings:Settings", "Table", "attr"),
    # B2 the write cache: Faust's Table and its serialized store, below the public mapping
    Use("B2", "faust:Table", "__getitem__", "override", ("key",), "sync"),
    Use("B2", "faust:Table", "__setitem__", "override", ("key", "value"), "sync"),
    Use("B2", "faust:Table", "__delitem__", "override", ("key",), "sync"),
    Use("B2", "faust:Table", "__contains__", "override", ("key",), "sync"),
    Use("B2", "faust:Table", "__iter__", "override", (), "sync"),
    Use("B2", "faust:Table", "__len__", "override", (), "sync"),
    Use("B2", "faust:Table", "keys", "override", (), "sync"),
    Use("B2", "faust:Table", "values", "override", (), "sync"),
    Use("B2", "faust:Table", "items", "override", (), "sync"),
    Use("B2", "faust:Table", "update", "override", ("args", "kwargs"), "sync"),
    Use("B2", "faust:Table", "clear", "override", (), "sync"),
    Use("B2", "faust:Table", "__missing__", "call", ("key",)),
    Use("B2", "faust:Table", "get", "override", ("key", "default"), "sync"),
    Use("B2", "faust:Table", "default", "attr"),
    Use("B2", "faust:Table", "on_key_get", "call", ("key",)),
    Use("B2", "faust:Table", "partition_for_key", "call", ("key",)),
    Use(
        "B2",
        "faust:Table",
        "send_changelog",
        "call",
        ("partition", "key", "value", "key_serializer", "value_serializer"),
    ),
    Use("B2", "faust:Table", "_sensor_on_set", "attr"),
    Use("B2", "faust:Table", "_sensor_on_del", "attr"),
    Use("B2", "faust:Table", "data", "attr"),
    Use("B2", "faust.stores.base:SerializedStore", "_encode_key", "call", ("key",)),
    Use("B2", "faust.stores.base:SerializedStore", "_encode_value", "call", ("value",)),
    Use("B2", "faust.stores.base:SerializedStore", "_decode_value", "call", ("value",)),
    Use("B2", ROCKSDB, "_get", "call", ("key",)),
    Use("B2", ROCKSDB, "_set", "call", ("key", "value")),
    Use("B2", ROCKSDB, "_del", "call", ("key",)),
    Use("B2", TABLES, "persist_offset_on_commit", "call", ("store", "tp", "offset")),
    # F2 a producer-buffer flush that drains
    Use("F2", BUFFER, "__post_init__", "override", (), "sync"),
    Use("F2", BUFFER, "_send_pending", "override", ("fut",), "coro"),
    Use("F2", BUFFER, "flush", "override", (), "coro"),
    Use("F2", BUFFER, "_handle_pending", "source", text="_send_pending"),
    Use("F2", BUFFER, "pending", "attr"),
    Use("F2", BUFFER, "message_sent", "attr"),
    Use("F2", BUFFER, "app", "attr"),
    Use("F2", BUFFER, "threaded_producer", "attr"),
    Use("F2", "faust.transport.producer:Producer", "buffer", "attr"),
    Use("F2", PRODUCER, "__init__", "override", ("transport", "loop", "kwargs"), "sync"),
    Use("F2", PRODUCER, "flush", "source", text="self.buffer.flush()"),
    # F3 the commit gate
    Use("F3 F2", FAUST_TM, "commit", "override", ("offsets", "start_new_transaction"), "coro"),
    Use("F3", FAUST_CONSUMER, "on_task_error", "override", ("exc",), "coro"),
    Use("F3", FAUST_CONSUMER, "on_task_error", "source", text="self.commit()"),
    Use("F3 F2", FAUST_CONSUMER, "_commit_offsets", "source", text="self.transactions.commit("),
    # F4 SIGTERM: offsets committed after the transactions ended
    Use("F4", FAUST_CONSUMER, "commit_and_end_transactions", "source", text="start_new_transaction=False"),
    Use("F4", AIO_PRODUCER, "_txn_manager", "attr"),
    Use("F4", "aiokafka.producer.transaction_manager:TransactionManager", "is_in_transaction", "call", ()),
    Use("F4", AIO_PRODUCER, "begin_transaction", "call", ()),
    # F5 producers re-initialised on every rebalance
    Use("F5", FAUST_TM, "on_rebalance", "override", ("assigned", "revoked", "newly_assigned"), "coro"),
    Use("F5", FAUST_TM, "_tps_to_transactional_ids", "call", ("tps",)),
    Use("F5", PRODUCER, "maybe_begin_transaction", "call", ("transactional_id",)),
    Use("F5 F15", PRODUCER, "stop_transaction", "override", ("transactional_id",), "coro"),
    # F6 highwaters from the broker
    Use("F6", THREAD, "_highwaters", "override", ("partitions",), "coro"),
    Use("F6", RECOVERY, "_build_highwaters", "source", text="consumer.highwaters("),
    Use("F6 F7 F10 F15", THREAD, "_ensure_consumer", "call", ()),
    Use("F6", AIO_CONSUMER, "end_offsets", "call", ("partitions",)),
    # F7 seek to the committed offsets in one request
    Use("F7", THREAD, "seek_to_committed", "override", (), "coro"),
    Use("F7 F15", THREAD, "call_thread", "call", ("fun",)),
    Use("F7 F8", THREAD, "consumer", "attr"),
    Use("F7 F15", AIO_CONSUMER, "_coordinator", "attr"),
    Use(
        "F7", "aiokafka.consumer.group_coordinator:GroupCoordinator", "fetch_committed_offsets", "call", ("partitions",)
    ),
    Use("F7", "aiokafka.structs:OffsetAndMetadata", "offset", "attr"),
    Use("F7", AIO_CONSUMER, "seek", "call", ("partition", "offset")),
    Use("F7", AIO_CONSUMER, "assignment", "call", ()),
    Use("F7 F8", TABLES, "changelog_topics", "attr"),
    # F8 stale records after a seek
    Use(
        "F8", THREAD, "_fetch_records", "override", ("consumer", "active_partitions", "timeout", "max_records"), "coro"
    ),
    Use("F8", THREAD, "getmany", "source", text="self._fetch_records"),
    Use("F8", FAUST_CONSUMER, "_wait_next_records", "override", ("timeout",), "coro"),
    Use("F8", FAUST_CONSUMER, "getmany", "override", ("timeout",), "asyncgen"),
    Use("F8", FAUST_CONSUMER, "getmany", "source", text="self._wait_next_records("),
    # F20 a gap recorded with the record that ends it
    Use("F20", FAUST_CONSUMER, "_add_gap", "override", ("tp", "offset_from", "offset_to"), "coro"),
    Use("F20", FAUST_CONSUMER, "_drain_messages", "source", text="self._add_gap(tp, r_offset + 1, offset)"),
    Use("F20", FAUST_CONSUMER, "_add_gap", "source", text="gap_for_tp.addi(offset_from, offset_to + 1)"),
    # F21 the revocation's last commit sees the revoked partitions' acknowledged offsets
    Use("F21", FAUST_CONSUMER, "on_partitions_revoked", "override", ("revoked",), "coro"),
    Use("F21", FAUST_CONSUMER, "on_partitions_revoked", "source", text="self._acked.pop(tp, None)"),
    Use("F21", FAUST_CONSUMER, "_on_partitions_revoked", "attr"),
    Use("F21", FAUST_CONSUMER, "_active_partitions", "attr"),
    Use("F21", FAUST_CONSUMER, "_paused_partitions", "attr"),
    Use("F21", FAUST_CONSUMER, "_gap", "attr"),
    Use("F21", FAUST_CONSUMER, "_acked", "attr"),
    Use("F21", FAUST_CONSUMER, "_acked_index", "attr"),
    Use("F21", FAUST_CONSUMER, "_read_offset", "attr"),
    Use("F21", FAUST_CONSUMER, "_committed_offset", "attr"),
    Use("F21", "faust.app.base:App", "_start_span_from_rebalancing", "call", ("name",)),
    # F24 the offsets to commit read under the commit gate
    Use("F24", FAUST_CONSUMER, "force_commit", "override", ("topics", "start_new_transaction"), "coro"),
    Use("F24", FAUST_CONSUMER, "force_commit", "source", text="self._filter_tps_with_pending_acks(topics)"),
    Use("F24", FAUST_CONSUMER, "_commit_tps", "source", text="self._filter_committable_offsets(tps)"),
    Use("F24", FAUST_CONSUMER, "_filter_tps_with_pending_acks", "call", ("topics",)),
    # F25 the fetch loop wakes when partitions resume
    Use("F25 F8", FAUST_CONSUMER, "_wait_next_records", "override", ("timeout",), "coro"),
    Use("F25", FAUST_CONSUMER, "_wait_next_records", "source", text="await self.sleep(1)"),
    Use("F25", FAUST_CONSUMER, "_get_active_partitions", "call", ()),
    Use("F25 F12", FAUST_CONSUMER, "resume_partitions", "override", ("tps",), "sync"),
    Use("F25", FAUST_CONSUMER, "flow_active", "attr"),
    Use("F8 F15", FAUST_DELEGATE, "_thread", "attr"),
    # F9 standby seek of unknown offsets / unassigned partitions (also stamps seek epochs, F8)
    Use("F9 F8", THREAD, "_seek_wait", "override", ("consumer", "partitions"), "coro"),
    # F10 livelock detector vs. a partition awaiting its reset
    Use("F10", THREAD, "verify_event_path", "override", ("now", "tp"), "sync"),
    Use("F10", AIO_CONSUMER, "_fetcher", "attr"),
    Use("F10", "aiokafka.consumer.fetcher:Fetcher", "_subscriptions", "attr"),
    Use("F10", f"{SUBSCRIPTION}:SubscriptionState", "subscription", "attr"),
    Use("F10", f"{SUBSCRIPTION}:Subscription", "assignment", "attr"),
    Use("F10", f"{SUBSCRIPTION}:Assignment", "state_value", "call", ("tp",)),
    Use("F10", f"{SUBSCRIPTION}:TopicPartitionState", "has_valid_position", "attr"),
    # F11 restore consumer
    Use("F11", RECOVERY, "__init__", "override", ("app", "tables", "kwargs"), "sync"),
    Use("F11", RECOVERY, "_wait", "override", ("coro", "timeout"), "coro"),
    Use("F11", RECOVERY, "_build_highwaters", "override", ("consumer", "tps", "destination", "title"), "coro"),
    # RestoringRecovery._wait recognises the restore step by the code object of the coroutine faust passes.
    Use("F11", RECOVERY, "_restart_recovery", "source", text="T(self._build_highwaters)("),
    Use("F11 F15", RECOVERY, "active_offsets", "attr"),
    Use("F15", RECOVERY, "standby_offsets", "attr"),
    Use("F11", RECOVERY, "tp_to_table", "attr"),
    Use("F11 F15", TABLES, "recovery", "attr"),
    Use("F11", TABLES, "_recovery", "attr"),
    Use("F11", "faust.tables.base:Collection", "apply_changelog_batch", "call", ("batch",)),
    Use("F11", ROCKSDB, "apply_changelog_batch", "source", text="msg.partition"),
    Use("F11", "faust.types.settings.settings:Settings", "TableManager", "attr"),
    Use("F11", "faust.tables", "TableManager", "attr"),
    # F12 streams resumed only after their seek
    Use("F12", RECOVERY, "on_recovery_completed", "override", ("generation_id",), "coro"),
    Use("F12", RECOVERY, "on_recovery_completed", "source", text="consumer.resume_partitions("),
    Use("F12", FAUST_CONSUMER, "resume_partitions", "override", ("tps",), "sync"),
    Use("F12", "faust:App", "consumer_generation_id", "attr"),
    # F13 the changelog queue keeps standby records
    Use("F13 F12", TABLES, "changelog_queue", "attr"),
    Use("F13", TABLES, "_changelog_queue", "attr"),
    Use("F13", "mode.utils.queues:ThrowableQueue", "clear", "override", (), "sync"),
    Use(
        "F13", "mode.utils.queues:FlowControlQueue", "__init__", "call", ("maxsize", "flow_control", "clear_on_resume")
    ),
    Use("F13", "mode.utils.queues:FlowControlEvent", "clear", "source", text="queue.clear()"),
    Use("F13", "faust:App", "flow_control", "attr"),
    # F14 changelog offsets persisted on commit
    Use("F14", TABLES, "on_commit", "override", ("offsets",), "sync"),
    Use("F14 F15", TABLES, "_pending_persisted_offsets", "attr"),
    Use("F14", ROCKSDB, "set_persisted_offset", "call", ("tp", "offset")),
    Use("F14", FAUST_CONSUMER, "_commit_offsets", "source", text="self.app.tables.on_commit("),
    # F15 state repair
    Use("F15 F1", PRODUCER, "send", "override", SEND, "coro"),
    Use(
        "F15",
        PRODUCER,
        "commit_transactions",
        "override",
        ("tid_to_offset_map", "group_id", "start_new_transaction"),
        "coro",
    ),
    Use("F15", PRODUCER, "abort_transaction", "override", ("transactional_id",), "coro"),
    Use("F15", PRODUCER, "begin_transaction", "call", ("transactional_id",)),
    Use("F15", ROCKSDB, "_dbs", "attr"),
    Use("F15", ROCKSDB, "_key_index", "attr"),
    Use("F15 F26", ROCKSDB, "partition_path", "call", ("partition",)),
    Use("F15", "aiokafka.consumer.group_coordinator:GroupCoordinator", "request_rejoin", "call", ()),
    # F16 re-bootstrap (a monkeypatch of a private coroutine: its parameters are passed through)
    Use("F16", AIO_CLIENT, "_metadata_update", "override", ("cluster_metadata", "topics"), "coro"),
    Use("F16", AIO_CLIENT, "_metadata_update", "source", text='("bootstrap", ConnectionGroup.DEFAULT)'),
    Use("F16", AIO_CLIENT, "bootstrap", "call", ()),
    Use("F16", AIO_CLIENT, "_conns", "attr"),
    Use("F16", AIO_CLIENT, "_client_id", "attr"),
    Use("F16", AIO_CLIENT, "_bootstrap_servers", "attr"),
    Use("F16", AIO_CLIENT, "cluster", "attr"),
    Use("F16", "aiokafka.client:ConnectionGroup", "DEFAULT", "attr"),
    Use("F16", "aiokafka.cluster:ClusterMetadata", "brokers", "call", ()),
    Use("F16", "aiokafka.conn:AIOKafkaConnection", "connected", "call", ()),
    # F22 coordinator lookup through a broker restart; a fenced or failed producer loses its transaction
    Use(
        "F22",
        "aiokafka.producer.sender:Sender",
        "_find_coordinator",
        "override",
        ("coordinator_type", "coordinator_key"),
        "coro",
    ),
    Use(
        "F22",
        "aiokafka.producer.sender:Sender",
        "_find_coordinator",
        "source",
        text="raise KafkaError(repr(err)) from err",
    ),
    Use("F22", "aiokafka.producer.sender:Sender", "_retry_backoff", "attr"),
    Use("F22", "aiokafka.producer.sender:Sender", "sender_task", "attr"),
    Use("F22", AIO_CLIENT, "force_metadata_update", "call", ()),
    Use("F22", AIO_PRODUCER, "_sender", "attr"),
    Use("F22", PRODUCER, "_new_producer", "override", ("transactional_id",), "sync"),
    Use("F22", "aiokafka.producer.transaction_manager:TransactionManager", "is_fatal_error", "call", ()),
    Use("F22", "aiokafka.errors", "IllegalOperation", "attr"),
    # F23 no gc.collect() per table per rebalance
    Use("F23", ROCKSDB, "revoke_partitions", "override", ("table", "tps"), "sync"),
    Use("F23", ROCKSDB, "revoke_partitions", "source", text="gc.collect()"),
    Use("F23", ROCKSDB, "_open_for_partition", "override", ("partition",), "sync"),
    Use("F23", ROCKSDB, "_dbs", "attr"),
    Use("F23", "faust.tables.base:Collection", "_new_store_by_url", "override", ("url",), "sync"),
    Use("F23", "faust.tables.base:Collection", "changelog_topic", "attr"),
    # F26 no database created at assignment for a partition with none on disk
    Use("F26", ROCKSDB, "assign_partitions", "override", ("table", "tps", "generation_id"), "coro"),
    Use("F26", ROCKSDB, "persisted_offset", "override", ("tp",), "sync"),
    Use("F26", "faust.tables.recovery:Recovery", "_add", "source", text="table.persisted_offset(tp)"),
    # F17 topics declared once
    Use("F17", f"{AIO_DRIVER}:Transport", "__init__", "override", ("args", "kwargs"), "sync"),
    Use(
        "F17",
        f"{AIO_DRIVER}:Transport",
        "_create_topic",
        "override",
        ("owner", "client", "topic", "partitions", "replication", "kwargs"),
        "coro",
    ),
    Use(
        "F17",
        PRODUCER,
        "create_topic",
        "override",
        (
            "topic",
            "partitions",
            "replication",
            "config",
            "timeout",
            "retention",
            "compacting",
            "deleting",
            "ensure_created",
        ),
        "coro",
    ),
    Use("F17", PRODUCER, "create_topic", "source", text="._create_topic("),
    # a created topic's configs (min.insync.replicas) go in through _create_topic's kwargs
    Use("F17", f"{AIO_DRIVER}:Transport", "_really_create_topic", "call", ("config",)),
    Use("F17", PRODUCER, "_ensure_producer", "call", ()),
    Use("F17", PRODUCER, "transport", "attr"),
    Use("F17", AIO_CLIENT, "fetch_all_metadata", "call", ()),
    Use("F17", "aiokafka.cluster:ClusterMetadata", "partitions_for_topic", "call", ("topic",)),
    Use("F17", "aiokafka.cluster:ClusterMetadata", "leader_for_partition", "call", ("partition",)),
    # the wait asks every broker (a random one answers fetch_all_metadata)
    Use("F17", AIO_CLIENT, "send", "call", ("node_id", "request")),
    Use("F17", "aiokafka.cluster:ClusterMetadata", "update_metadata", "call", ("metadata",)),
    Use("F17", "aiokafka.cluster:ClusterMetadata", "brokers", "call", ()),
    # F18 Faust's own views off
    Use("F18", "faust.web.base:Web", "default_blueprints", "attr"),
    Use("F18", "faust.web.base:Web", "production_blueprints", "attr"),
    Use("F18", "faust.web.base:Web", "debug_blueprints", "attr"),
    Use("F18", "faust.web.base:Web", "optional_blueprints", "attr"),
    Use("F18", "faust:App", "_new_web", "override", (), "sync"),
    Use("F18", "faust:App", "on_webserver_init", "override", ("web",), "sync"),
    Use("F18", "faust.web.drivers.aiohttp:Web", "web_app", "attr"),
    # F19 committed offsets fetched stably (KIP-447)
    Use("F19", THREAD, "on_start", "override", (), "coro"),
    Use("F19", THREAD, "_create_worker_consumer", "override", ("transport",), "sync"),
    Use("F19", AIO_CONSUMER, "_fetch_max_wait_ms", "attr"),
    Use("F19", AIO_CONSUMER, "start", "source", text="fetch_max_wait_ms=self._fetch_max_wait_ms"),
    Use("F19", AIO_CONSUMER, "_coordinator", "attr"),
    Use("F19", AIO_CONSUMER, "_subscription", "attr"),
    Use("F19", f"{SUBSCRIPTION}:SubscriptionState", "subscription", "attr"),
    Use("F19", GROUP_COORDINATOR, "_do_fetch_commit_offsets", "override", ("partitions",), "coro"),
    Use("F19", GROUP_COORDINATOR, "_maybe_refresh_commit_offsets", "source", text="self._do_fetch_commit_offsets("),
    Use("F19", GROUP_COORDINATOR, "fetch_committed_offsets", "source", text="self._do_fetch_commit_offsets("),
    Use("F19", GROUP_COORDINATOR, "_send_req", "call", ("request",)),
    Use("F19", GROUP_COORDINATOR, "coordinator_dead", "call", ()),
    Use("F19", GROUP_COORDINATOR, "group_id", "attr"),
    Use("F19", "aiokafka.protocol.api:Request", "prepare", "override", ("versions",), "sync"),
    Use("F19", "aiokafka.protocol.api:Request", "build", "override", ("request_struct_class",), "sync"),
    Use("F19", "aiokafka.protocol.api:RequestStruct", "FLEXIBLE_VERSION", "attr"),
    *(Use("F19", "aiokafka.protocol.api:RequestStruct", a, "attr") for a in ("API_KEY", "API_VERSION", "SCHEMA")),
    Use("F19", "aiokafka.protocol.api:RequestStruct", "RESPONSE_TYPE", "attr"),
    *(Use("F19", "aiokafka.protocol.api:Response", a, "attr") for a in ("API_KEY", "API_VERSION", "SCHEMA")),
    Use("F19", "aiokafka.protocol.api:Request", "API_KEY", "attr"),
    Use("F19", "aiokafka.errors:KafkaError", "retriable", "attr"),
    # W the seams the fixes are installed through
    # install() sets the transports through the App's public setters (the properties create them lazily otherwise)
    Use("W", "faust:App", "transport", "attr"),
    Use("W", "faust:App", "producer_transport", "attr"),
    Use("W", "faust.transport.base:Transport", "TransactionManager", "attr"),
    Use("W", "faust.transport.base:Transport", "create_transaction_manager", "source", text="self.TransactionManager("),
    Use("W", f"{AIO_DRIVER}:Transport", "Producer", "attr"),
    Use("W", f"{AIO_DRIVER}:Transport", "Consumer", "attr"),
    Use("W", f"{AIO_DRIVER}:Consumer", "_new_consumer_thread", "override", (), "sync"),
    Use("W", FAUST_DELEGATE, "__init__", "source", text="self._new_consumer_thread()"),
    Use("W", THREAD, "__init__", "override", ("consumer", "kwargs"), "sync"),
    # D1, D2: private reads that fix nothing
    Use("D1", FAUST_CONSUMER, "_paused_partitions", "attr"),
    Use("D1", "faust.assignor.partition_assignor:PartitionAssignor", "_topic_groups", "attr"),
    Use("D2", ROCKSDB, "_db_for_partition", "call", ("partition",)),
    # P public hooks we override
    Use("P", "mode:Service", "on_start", "override", (), "coro"),
    Use("P", "mode:Service", "on_stop", "override", (), "coro"),
    Use("P", "faust.web:View", "get", "override", ("request", "kwargs"), "coro"),
    Use("P", "faust.web:View", "post", "override", ("request", "kwargs"), "coro"),
    Use("P", "faust.web:View", "put", "override", ("request", "kwargs"), "coro"),
    Use("P", "faust.web:View", "delete", "override", ("request", "kwargs"), "coro"),
]

#: Underscore names our code reads that belong to no faust / aiokafka / mode object (the guard below skips them).
NOT_UPSTREAM = {
    "_rebootstraps",  # the marker kafka_rebootstrap.install() puts on its patch (ours)
    "_pool",  # sinks/outbound.py: httpx's AsyncHTTPTransport._pool (httpx, not a stream-processing package)
}

SCANNED = ["crownstream", "agents", "web", "sinks", "streams"]


@functools.cache
def _resolve(where: str):
    module, _, qualname = where.partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        obj = getattr(obj, part)
    return obj


@functools.cache
def _source(obj) -> str:
    obj = getattr(obj, "fun", obj)  # a mode ``@Service.task`` is a ServiceTask around its function
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _has_attribute(owner, name: str) -> bool:
    """A class attribute, property, annotation or ``self.<name> = …`` assignment anywhere in the MRO."""
    if not inspect.isclass(owner):
        return hasattr(owner, name)
    assigned = re.compile(rf"self\.{re.escape(name)}\s*(:[^=\n]*)?=(?!=)")
    for klass in inspect.getmro(owner):
        if name in vars(klass) or name in vars(klass).get("__annotations__", {}):
            return True
        if assigned.search(_source(klass)):
            return True
    return False


def _params(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def _flavour(function) -> str:
    if inspect.isasyncgenfunction(function):
        return "asyncgen"
    return "coro" if inspect.iscoroutinefunction(function) else "sync"


def _problem(use: Use) -> str | None:
    try:
        owner = _resolve(use.where)
    except (ImportError, AttributeError) as exc:
        return f"{use.where} is gone ({exc!r})"
    if use.kind == "attr":
        return None if _has_attribute(owner, use.name) else f"no attribute {use.name!r}"
    if use.kind == "value":
        found = getattr(owner, use.name, None)
        return None if found == use.text else f"{use.name} is {found!r}, the fix reproduces {use.text!r}"
    function = getattr(owner, use.name, None)
    if function is None:
        return f"no {use.name!r}"
    if use.kind == "source":
        text = _source(function)
        return None if use.text in text else f"its source no longer contains {use.text!r}"
    if not callable(function):
        return f"{use.name!r} is no longer callable"
    params = _params(function)
    if use.kind == "override":
        if params != list(use.params):
            return f"parameters are {params}, the override expects {list(use.params)}"
        if use.flavour and _flavour(function) != use.flavour:
            return f"it is {_flavour(function)}, the override is {use.flavour}"
        return None
    kinds = {p.kind for p in inspect.signature(function).parameters.values()}
    missing = [p for p in use.params if p not in params]
    if missing and inspect.Parameter.VAR_KEYWORD not in kinds:
        return f"parameters are {params}, we pass {list(use.params)}"
    return None


def _failure(use: Use, problem: str) -> str:
    fixes = "; ".join(f"{fix}: {FIXES[fix]}" for fix in use.fixes.split())
    return (
        f"{use}: {problem}.\nThis breaks {fixes}.\nRead UPSTREAM.md (repository root): the row says what the fix "
        f"works around, which test proves it, and whether the new upstream version makes it removable."
    )


@pytest.mark.parametrize("use", CONTRACT, ids=str)
def test_upstream_name_is_still_there_as_the_fix_expects(use):
    problem = _problem(use)
    assert problem is None, _failure(use, problem)


def test_installed_versions_are_ones_the_suite_has_run_against():
    installed = {package: version(package) for package in TESTED_VERSIONS}
    untested = {p: v for p, v in installed.items() if v not in TESTED_VERSIONS[p]}
    assert not untested, (
        f"installed {untested}, the suite has run against {TESTED_VERSIONS}. Every fix in UPSTREAM.md touches these "
        f"packages' internals: run this test, then the whole suite (make test), and only then add the version to "
        f"TESTED_VERSIONS in {Path(__file__).relative_to(REPO)}. Read UPSTREAM.md, 'Bumping a pin'."
    )


def test_every_row_of_the_contract_names_a_fix():
    assert {fix for use in CONTRACT for fix in use.fixes.split()} == set(FIXES)
    upstream = (REPO / "UPSTREAM.md").read_text()
    missing = [fix for fix in FIXES if f"| {fix} |" not in upstream]
    assert not missing, f"UPSTREAM.md has no row for {missing}"


# --- The guards: a new override or private read must be added here (and to UPSTREAM.md) before it passes. ---


def _engine_modules():
    """Every module of the engine package (crownstream/engine/)."""
    import crownstream.engine as engine

    for info in pkgutil.iter_modules(engine.__path__, prefix=f"{engine.__name__}."):
        yield importlib.import_module(info.name)


def test_the_engine_package_is_where_the_fixes_are():
    names = {module.__name__.rsplit(".", 1)[1] for module in _engine_modules()}
    assert {
        "transactions",
        "consumer",
        "consumer_thread",
        "producer",
        "producer_buffer",
        "recovery",
        "table_manager",
        "topic_declarations",
        "transport",
        "install",
    } <= names, names


def _engine_classes():
    for module in _engine_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                yield cls
                for nested in vars(cls).values():  # DeclareOnceTransport.Producer, made by _declare_once
                    if inspect.isclass(nested) and nested.__module__ == module.__name__:
                        yield nested


def _is_upstream(cls) -> bool:
    return cls.__module__.split(".")[0] in {"faust", "aiokafka", "mode"}


def _listed(cls, name: str) -> bool:
    mro = inspect.getmro(cls)
    return any(use.name == name and _resolve(use.where) in mro for use in CONTRACT)


def test_every_override_in_the_engine_is_in_the_contract():
    unlisted = []
    for cls in _engine_classes():
        upstream = [k for k in inspect.getmro(cls)[1:] if _is_upstream(k)]
        if not upstream:
            continue
        written = _source(cls)
        for name in vars(cls):
            if name.startswith("__") and name not in {"__init__", "__post_init__"}:
                continue
            defined = rf"^\s+((async\s+)?def\s+{re.escape(name)}\b|{re.escape(name)}\s*[:=])"
            if not re.search(defined, written, re.MULTILINE):
                continue  # put there by a metaclass or decorator (mode's logger, ABC's cache), not written by us
            overrides = any(name in vars(k) or name in vars(k).get("__annotations__", {}) for k in upstream)
            if overrides and not _listed(upstream[0], name):
                unlisted.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    assert not unlisted, f"overrides of upstream names missing from CONTRACT (and UPSTREAM.md): {unlisted}"


#: Classes defined in files this test does not import (app.py creates the app), by the base name they subclass.
AST_BASES = {
    "AiohttpWeb": "faust.web.drivers.aiohttp:Web",
    "faust.App": "faust:App",
    "mode.Service": "mode:Service",
    "View": "faust.web:View",
}


def _python_files():
    for folder in SCANNED:
        yield from sorted((REPO / folder).rglob("*.py"))


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def test_every_override_in_the_app_services_and_views_is_in_the_contract():
    unlisted = []
    for path in _python_files():
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                where = AST_BASES.get(ast.unparse(base))
                if where is None:
                    continue
                upstream = _resolve(where)
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names = [item.name]
                    else:  # class attributes: ``name = …`` or ``name: type = …``
                        targets = getattr(item, "targets", [getattr(item, "target", None)])
                        names = [t.id for t in targets if isinstance(t, ast.Name)]
                    for name in names:
                        if hasattr(upstream, name) and not _listed(upstream, name):
                            unlisted.append(f"{path.relative_to(REPO)}: {node.name}.{name}")
    assert not unlisted, f"overrides of upstream names missing from CONTRACT (and UPSTREAM.md): {unlisted}"


def test_every_private_name_our_code_reads_is_in_the_contract():
    """Every ``x._name`` in crownstream/, agents/, web/, sinks/, streams/ whose ``_name`` the same file does not
    define itself is an upstream private name, and must be in CONTRACT."""
    listed = {use.name for use in CONTRACT} | NOT_UPSTREAM
    unlisted = set()
    for path in _python_files():
        tree = _tree(path)
        own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        own |= {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and isinstance(n.ctx, ast.Store)
            and isinstance(n.value, ast.Name)
            and n.value.id in {"self", "cls"}
        }
        own |= {
            t.id
            for n in ast.walk(tree)
            if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in own
                and node.attr not in listed
            ):
                unlisted.add(f"{path.relative_to(REPO)}:{node.lineno}: .{node.attr}")
    assert not unlisted, f"private upstream names read but missing from CONTRACT (and UPSTREAM.md): {sorted(unlisted)}"
