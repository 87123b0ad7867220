"""Prometheus metrics of a worker, served at ``/metrics`` next to Faust's own sensors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter("crownstream_events_in_total", "Valid events consumed, by topic and type.", ["topic", "type"])
AGENT_RECORDS = Counter(
    "crownstream_agent_records_total",
    "Records an agent processed, by agent and outcome (applied, dead_lettered; requeued: a batch Kafka failed "
    "under, read again after a rebalance).",
    ["agent", "outcome"],
)
EVENTS_OUT = Counter("crownstream_events_out_total", "Events produced by agents, by topic and type.", ["topic", "type"])
DEAD_LETTERS = Counter(
    "crownstream_dead_letters_total",
    "Records sent to the dead-letter topic, by source topic and error code.",
    ["topic", "code"],
)
DUPLICATES = Counter(
    "crownstream_duplicate_events_total",
    "Events already applied (same event id or result revision), skipped.",
    ["type"],
)
PROCESSING_SECONDS = Histogram(
    "crownstream_processing_seconds",
    "Time to apply one event, by type.",
    ["type"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
DELIVERIES_TOTAL = Counter(
    "crownstream_deliveries_total",
    "Delivery attempts by channel and outcome (sent, failed, dead).",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "crownstream_delivery_seconds",
    "Time of one delivery attempt (send and wait for the answer), by channel.",
    ["channel"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DELIVERY_BACKLOG = Gauge(
    "crownstream_delivery_backlog",
    "Deliveries not done yet in the ledger, by channel and state (pending: not tried yet; failed: waiting for a "
    "retry; sending: leased). The same for every worker (read from the shared ledger): aggregate with max().",
    ["channel", "state"],
)
DELIVERY_OLDEST_PENDING = Gauge(
    "crownstream_delivery_oldest_pending_seconds",
    "Age of the oldest delivery not done yet (pending, failed or sending), by channel; 0 when there is none.",
    ["channel"],
)
CHANNEL_PAUSED = Gauge(
    "crownstream_channel_paused",
    "1 while an operator has paused the channel (crownstream channels pause): its deliveries are held in the ledger.",
    ["channel"],
)
WEBHOOK_ENDPOINTS_DISABLED = Gauge(
    "crownstream_webhook_endpoints_disabled",
    "Webhook endpoints that no longer receive deliveries (disabled after failing for days, or by their owner).",
)
DELIVERY_RECLAIMS = Counter(
    "crownstream_delivery_reclaims_total",
    "Deliveries claimed again after a lease ran out (their sender died; the receiver may see them twice).",
    ["channel"],
)
NOTIFICATION_REQUESTS = Counter(
    "crownstream_notification_requests_total",
    "Delivery requests emitted by fan-out, by channel and kind.",
    ["channel", "kind"],
)
NOTIFICATION_SKIPPED = Counter(
    "crownstream_notification_skipped_total",
    "Notification channels not used for a user, by channel and reason "
    "(opted_out, unsubscribed, no_address, not_selected).",
    ["channel", "reason"],
)
NOTIFICATION_NO_AUDIENCE = Counter(
    "crownstream_notification_no_audience_total",
    "Notices whose audience resolved to nobody, by notification type.",
    ["type"],
)
NOTIFICATION_HELD = Counter(
    "crownstream_notification_held_total",
    "Notifications held: for a digest, until quiet hours end, or folded by a throttle (mode).",
    ["mode"],
)
NOTIFICATION_CLOCK = Gauge(
    "crownstream_notification_clock_seconds",
    "The notification clock (Unix time) at the last due-work check: real time unless CROWNSTREAM_CLOCK_START is set.",
)
CONSUMER_LAG = Gauge(
    "crownstream_consumer_lag",
    "Records of a source partition this worker has yet to consume (actives only).",
    ["topic", "partition"],
)
TABLE_KEYS = Gauge(
    "crownstream_table_keys",
    "Keys of a table in the partitions this worker owns actively (RocksDB estimate).",
    ["table"],
)
TABLE_STATE_WIPES = Counter(
    "crownstream_table_state_wipes_total",
    "Local table partitions deleted to be restored from the changelog because a transaction holding their "
    "writes ended without a commit, by cause (aborted, stopped, commit_failed, fenced).",
    ["cause"],
)
TABLE_RESTORED_RECORDS = Counter(
    "crownstream_table_restored_records_total",
    "Changelog records applied to active table partitions by the restore consumer (crownstream/engine/recovery.py).",
    ["table"],
)
TABLE_RESTORE_SECONDS = Histogram(
    "crownstream_table_restore_seconds",
    "Time to restore this worker's active table partitions after a rebalance, including the end-offset lookup.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
REBALANCE_PAUSE_SECONDS = Histogram(
    "crownstream_rebalance_pause_seconds",
    "How long a rebalance stopped this worker's processing: from its partitions' revocation to the first event it "
    "processed in the new generation (crownstream/engine/rebalance_pause.py).",
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60),
)
UNSTABLE_OFFSET_FETCHES = Counter(
    "crownstream_unstable_offset_fetches_total",
    "Committed-offset fetches answered UNSTABLE_OFFSET_COMMIT (a transaction still held the offsets) and retried.",
)
STALE_RECORDS = Counter(
    "crownstream_stale_records_dropped_total",
    "Records dropped because their partition was sought after their batch was fetched (read again from the new "
    "position), by kind of partition (stream, changelog).",
    ["kind"],
)
