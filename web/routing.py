"""Query routing: which worker owns a key, and whether this worker can answer for it right now.

Faust's own ``table_route`` re-serialises the key with the table's serializer and asks the producer for the
changelog topic's metadata, which it may not have yet (a 500 instead of an answer) and which hashes a
different byte string than the one our producers keyed the input with. We route on the same bytes and the
same partitioner (murmur2, as Kafka's Java client and aiokafka use) as the producer, so a query goes to the
worker that folds that key's events.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
import httpx
from faust.types import TP
from yarl import URL

from crownstream.streams.partitioning import partition_for
from crownstream.web.errors import NotReady as NotReady

ROUTED_HEADER = "x-crownstream-routed-by"


@dataclass(frozen=True, slots=True)
class Owner:
    url: URL
    partition: int
    is_self: bool


def owner_of(app: faust.App, table: faust.Table, key: str) -> Owner:
    if app.rebalancing:
        raise NotReady("the consumer group is rebalancing")
    changelog = table.changelog_topic.get_topic_name()
    partitions = table.partitions or app.conf.topic_partitions
    partition = partition_for(key, partitions)
    for host, topics in app.router.table_metadata(table.name).items():
        if partition in topics.get(changelog, ()):
            url = URL(host)
            is_self = _same_host(url, URL(str(app.conf.canonical_url)))
            if is_self:
                _check_local(app, table, TP(changelog, partition))
            return Owner(url, partition, is_self)
    raise NotReady(f"no worker owns partition {partition} of {table.name} yet")


def _check_local(app: faust.App, table: faust.Table, tp: TP) -> None:
    recovery = app.tables.recovery
    if tp not in recovery.actives_for_table.get(table, set()) and not app.assignor.is_active(tp):
        raise NotReady(f"partition {tp.partition} of {table.name} is not active on this worker yet")
    if recovery.in_recovery and not recovery.completed.is_set():
        raise NotReady("tables are still being recovered from their changelogs")


def _same_host(a: URL, b: URL) -> bool:
    return (a.host, a.port) == (b.host, b.port)


async def forward(
    owner: Owner, method: str, path_qs: str, headers: dict[str, str], body: bytes | None, me: str, timeout: float = 5.0
) -> httpx.Response:
    """Send the request to its owner once. A request that was already forwarded is never forwarded again:
    two workers with different views of the assignment would otherwise bounce it between them."""
    if ROUTED_HEADER in {k.lower() for k in headers}:
        raise NotReady("ownership is moving between workers")
    # The credential goes with the request: the owner checks it again (never trust a peer's word for it).
    # httpx logs the request line only, never these headers.
    fwd_headers = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept")}
    fwd_headers[ROUTED_HEADER] = me
    try:
        return await _client(timeout).request(
            method, str(owner.url.with_path("")).rstrip("/") + path_qs, headers=fwd_headers, content=body
        )
    except httpx.TransportError as exc:
        # The owner died or is restarting; the group will move its partitions here or elsewhere shortly.
        raise NotReady(
            f"the worker that owns this key ({owner.url}) is unreachable: {exc.__class__.__name__}", retry_after=2
        ) from exc


_shared_client: httpx.AsyncClient | None = None


def _client(timeout: float) -> httpx.AsyncClient:
    # One pooled client per worker: a query fan-in must not open a TCP connection per request.
    global _shared_client
    if _shared_client is None or _shared_client.is_closed:
        _shared_client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=100))
    return _shared_client
