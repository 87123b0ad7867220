"""Outbound webhooks sink: one delivery per (request, matching endpoint of the subscriber), signed per the
Standard Webhooks spec, ``webhook-id`` = the dedup key.

2xx = delivered. Anything else (timeouts, connection errors, 3xx — redirects are never followed, 4xx, 5xx)
is a failed attempt, retried by the dispatcher with backoff from the ledger (a scheduled-retry table), so a
slow or dead endpoint holds only its own deliveries, never the partition. An endpoint that has failed
without a success for ``CROWNSTREAM_WEBHOOK_DISABLE_AFTER_S`` is disabled and its owner notified in-app;
its remaining deliveries go to the delivery dead-letter topic and can be replayed once it is fixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import orjson

from crownstream.schemas.deliveries import DeliveryRequest
from crownstream.sinks.base import Sink
from crownstream.sinks.ledger import Claimed, Outcome, ledger_row
from crownstream.sinks.signing import sign_headers
from crownstream.sinks.targets import GuardedResolver, TargetRefused, check_url_literal
from crownstream.sinks.webhook_endpoints import Endpoint, endpoints_of, get_endpoints, mark_failing, mark_healthy

log = logging.getLogger(__name__)

Notify = Callable[[Endpoint, str], Awaitable[None]]

ENDPOINT_CACHE_S = 5.0  # how stale a worker's view of an endpoint (URL, secrets, enabled) may be


def webhook_body(request: DeliveryRequest) -> bytes:
    """The JSON body: Standard Webhooks' recommended envelope (type, timestamp, data). Deterministic for a
    request, so a retry carries the same bytes (and the ledger's payload digest means something)."""
    return orjson.dumps({
        "type": request.notification_type,
        "timestamp": request.created_at.isoformat(),
        "data": {
            "id": request.dedup_key,
            "user_id": request.user_id,
            "tournament_id": request.tournament_id,
            "source_event_id": request.source_event_id,
            "kind": request.kind,
            "critical": request.critical,
            "title": request.title,
            "body": request.body,
            "url": request.url,
            "data": request.data,
            "items": [item.model_dump(mode="json") for item in request.items],
        },
    })


class WebhookSink(Sink):
    channel = "webhook"

    def __init__(self, settings, ledger, notify_disabled: Notify | None = None) -> None:
        super().__init__(settings, ledger)
        self.notify_disabled = notify_disabled
        self._client: aiohttp.ClientSession | None = None
        self._cache: dict[str, tuple[float, Endpoint | None]] = {}

    async def start(self) -> None:
        # aiohttp rather than httpx here: to a loopback receiver httpx's pool managed ~100-200 requests/s on
        # this project's 2-core CI machine where aiohttp did ~1,700 (bench/sinks.py), and webhooks are the
        # high-volume sink.
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.sink_max_in_flight, limit_per_host=0,
                                           resolver=GuardedResolver(self.settings.sink_allow_private_targets),
                                           ttl_dns_cache=60),
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s),
            headers={"user-agent": "Crownstream-Webhooks/1", "content-type": "application/json"},
            skip_auto_headers=("accept-encoding",),
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def rows(self, requests: Sequence[DeliveryRequest]) -> list[dict[str, Any]]:
        endpoints = await endpoints_of(self.ledger.engine, sorted({r.user_id for r in requests}))
        by_user: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            by_user.setdefault(endpoint.user_id, []).append(endpoint)
        return [ledger_row(r, e.id) for r in requests for e in by_user.get(r.user_id, ()) if e.wants(r.notification_type)]

    async def _endpoint(self, endpoint_id: str) -> Endpoint | None:
        now = time.monotonic()
        cached = self._cache.get(endpoint_id)
        if cached is None or now - cached[0] > ENDPOINT_CACHE_S:
            found = await get_endpoints(self.ledger.engine, [endpoint_id])
            cached = (now, found.get(endpoint_id))
            self._cache[endpoint_id] = cached
        return cached[1]

    async def deliver(self, claimed: Claimed) -> Outcome:
        endpoint = await self._endpoint(claimed.target)
        if endpoint is None:
            return Outcome.dead(f"webhook endpoint {claimed.target} no longer exists")
        if not endpoint.enabled:
            return Outcome.dead(f"webhook endpoint {endpoint.id} is disabled ({endpoint.disabled_reason or 'by its owner'}); "
                                "re-enable it, then replay the delivery dead-letter topic")
        body = webhook_body(claimed.request)
        digest = hashlib.sha256(body).hexdigest()
        try:
            check_url_literal(endpoint.url, self.settings.sink_allow_private_targets)
        except TargetRefused as exc:
            return Outcome.dead(str(exc), digest=digest)
        headers = sign_headers(claimed.dedup_key, body, endpoint.secrets)
        assert self._client is not None, "WebhookSink.start() was not called"
        try:
            async with self._client.post(endpoint.url, data=body, headers=headers, allow_redirects=False) as response:
                code = response.status
                text = "" if 200 <= code < 300 else (await response.text(errors="replace"))[:200]
                location = response.headers.get("location")
                retry_after = _retry_after(response.headers.get("retry-after"))
        except TargetRefused as exc:  # from the resolver: the name resolves to a non-public address
            return Outcome.dead(str(exc), digest=digest)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return await self._failed(endpoint, f"{type(exc).__name__}: {exc or 'timed out'}", None, digest)
        if 200 <= code < 300:
            if endpoint.failing_since is not None:
                await mark_healthy(self.ledger.engine, endpoint.id)
                self._cache.pop(endpoint.id, None)
            return Outcome.sent(code, digest)
        if 300 <= code < 400:
            error = f"HTTP {code}: redirects are not followed (to {location!r}); register the final URL"
        else:
            error = f"HTTP {code}: {text}"
        return await self._failed(endpoint, error, code, digest, retry_after)

    async def _failed(self, endpoint: Endpoint, error: str, code: int | None, digest: str,
                      retry_after: float | None = None) -> Outcome:
        disabled = await mark_failing(self.ledger.engine, endpoint.id, self.settings.webhook_disable_after_s, error)
        self._cache.pop(endpoint.id, None)
        if disabled:
            log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.id, "user_id": endpoint.user_id})
            if self.notify_disabled is not None:
                await self.notify_disabled(endpoint, error)
        return Outcome.failed(error, retry_in=retry_after or 0.0, code=code, digest=digest)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
