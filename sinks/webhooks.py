"""Outbound webhooks sink: one delivery per (request, matching endpoint of the subscriber), signed per the
Standard Webhooks spec, ``webhook-id`` = the dedup key.

2xx = delivered. 408, 429, 5xx, timeouts and connection errors are failed attempts, retried by the
dispatcher with backoff from the ledger (a scheduled-retry table; a Retry-After is honoured up to
``CROWNSTREAM_SINK_RETRY_AFTER_MAX_S``, never slept on), so a slow or dead endpoint holds only its own
deliveries, never the partition. Other 4xx answers and 3xx (redirects are never followed) will not improve
by retrying: the delivery goes to the delivery dead-letter topic at once. The URL passes the outbound-target
policy (sinks/targets.py) at registration and again at every delivery, and the connection goes only to the
addresses that policy checked (sinks/outbound.py); a URL that became bad is a permanent failure. An endpoint that has
failed without a success for ``CROWNSTREAM_WEBHOOK_DISABLE_AFTER_S`` is disabled and its owner notified in-app;
its remaining deliveries go to the delivery dead-letter topic and can be replayed once it is fixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from async_lru import alru_cache

from crownstream.schemas.deliveries import DeliveryRequest
from crownstream.sinks.base import Sink
from crownstream.sinks.ledger import Claimed, Outcome, clean_text, ledger_row
from crownstream.sinks.outbound import failure_category, is_permanent_refusal, pinned_resolver, read_capped_aiohttp
from crownstream.sinks.retry import parse_delay
from crownstream.sinks.signing import signer
from crownstream.sinks.targets import REFUSED, TargetRefused, parse_target
from crownstream.sinks.trace import delivery_trace, traced_delivery
from crownstream.sinks.webhook_endpoints import (
    Endpoint,
    disable_gone,
    endpoint_controls,
    endpoints_of,
    get_endpoints,
    mark_failing,
    mark_healthy,
)
from crownstream.tracing.context import HEADER as TRACE_HEADER

log = logging.getLogger(__name__)

Notify = Callable[[Endpoint, str], Awaitable[None]]

ENDPOINT_CACHE_S = 5.0  # how stale a worker's view of an endpoint (URL, secrets, enabled) may be
ENDPOINT_CACHE_SIZE = 10_000  # endpoints remembered per worker (least recently used go first)


def webhook_body(request: DeliveryRequest) -> bytes:
    """The JSON body: Standard Webhooks' recommended envelope (type, timestamp, data). Deterministic for a
    request, so a retry carries the same bytes (and the ledger's payload digest means something)."""
    return orjson.dumps(
        {
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
        }
    )


class WebhookSink(Sink):
    channel = "webhook"
    circuit_breaker = True

    def __init__(self, settings, ledger, notify_disabled: Notify | None = None) -> None:
        super().__init__(settings, ledger)
        self.notify_disabled = notify_disabled
        self._client: aiohttp.ClientSession | None = None
        # One lookup per endpoint and interval however many deliveries to it are in flight: concurrent misses share
        # the one query (a plain dict cache let each of the ~256 sends in flight query PostgreSQL for the same
        # endpoint whenever its entry expired, which was most of the sink's time in bench/sinks.py).
        self._endpoint = alru_cache(maxsize=ENDPOINT_CACHE_SIZE, ttl=ENDPOINT_CACHE_S)(self._load_endpoint)
        self._paused: list[str] = []
        self._rates: dict[str, float] = {}
        self._controls_read = float("-inf")

    async def start(self) -> None:
        # aiohttp rather than httpx here: to a loopback receiver httpx's pool managed ~100-200 requests/s on
        # this project's 2-core CI machine where aiohttp did ~1,700 (bench/sinks.py), and webhooks are the
        # high-volume sink.
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.settings.sink_max_in_flight,
                limit_per_host=0,
                resolver=pinned_resolver(self.settings.sink_allow_private_targets),
                ttl_dns_cache=60,
            ),
            # total = connect to last byte (the deliver() deadline below covers the resolver too).
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s),
            headers={"user-agent": "Crownstream-Webhooks/1", "content-type": "application/json"},
            # No proxy from the environment (it would resolve and connect for us), no compressed answers.
            skip_auto_headers=("accept-encoding",),
            auto_decompress=False,
            trust_env=False,
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def rows(self, requests: Sequence[DeliveryRequest]) -> list[dict[str, Any]]:
        endpoints = await endpoints_of(self.ledger.engine, sorted({r.user_id for r in requests}))
        by_user: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            by_user.setdefault(endpoint.user_id, []).append(endpoint)
        return [
            ledger_row(r, e.id) for r in requests for e in by_user.get(r.user_id, ()) if e.wants(r.notification_type)
        ]

    async def _read_controls(self) -> None:
        """Endpoints their owners paused and the rate limits they set, read at most once per poll interval (one
        query for both)."""
        now = time.monotonic()
        if now - self._controls_read >= self.settings.sink_poll_interval_s:
            self._controls_read = now
            try:
                self._paused, self._rates = await endpoint_controls(self.ledger.engine)
            except Exception as exc:  # PostgreSQL away: the claim that follows waits for it anyway
                log.warning(
                    "reading paused and rate-limited webhook endpoints failed", extra={"error": repr(exc)[:300]}
                )

    async def held_targets(self) -> list[str]:
        await self._read_controls()
        return self._paused

    async def rate_limits(self) -> dict[str, float]:
        await self._read_controls()
        return self._rates

    async def _load_endpoint(self, endpoint_id: str) -> Endpoint | None:
        return (await get_endpoints(self.ledger.engine, [endpoint_id])).get(endpoint_id)

    async def deliver(self, claimed: Claimed) -> Outcome:
        endpoint = await self._endpoint(claimed.target)
        if endpoint is None:
            return Outcome.dead(f"webhook endpoint {claimed.target} no longer exists")
        if endpoint.paused:  # paused after this row was claimed: back to the ledger, unattempted
            return Outcome.deferred(self.settings.sink_poll_interval_s)
        if not endpoint.enabled:
            return Outcome.dead(
                f"webhook endpoint {endpoint.id} is disabled ({endpoint.disabled_reason or 'by its owner'}); "
                "re-enable it, then replay the delivery dead-letter topic"
            )
        body = webhook_body(claimed.request)
        digest = hashlib.sha256(body).hexdigest()
        s = self.settings
        try:
            # Literal addresses never reach the resolver (aiohttp connects to them directly): checked here,
            # on the host yarl gives aiohttp. Names are resolved and checked by the connector's resolver.
            parse_target(endpoint.url, s.sink_allow_private_targets, s.sink_max_url_length, client="aiohttp")
        except TargetRefused as exc:
            return await self._refused(endpoint, exc, digest)
        headers = signer(endpoint.signing_secrets(datetime.now(UTC))).headers(claimed.dedup_key, body)
        trace = delivery_trace(claimed)
        if trace is not None:
            headers = {**headers, TRACE_HEADER: trace[0].header}
        assert self._client is not None, "WebhookSink.start() was not called"
        text = b""
        try:
            with traced_delivery(trace, claimed, endpoint.url) as span:
                async with asyncio.timeout(s.webhook_timeout_s):
                    async with self._client.post(
                        endpoint.url, data=body, headers=headers, allow_redirects=False
                    ) as response:
                        code = response.status
                        if span is not None:
                            span.set_attribute("http.response.status_code", code)
                        retry_after = parse_delay(response.headers.get("retry-after"))
                        if not 200 <= code < 300:
                            text, _ = await read_capped_aiohttp(response, s.sink_response_body_max_bytes)
        except TargetRefused as exc:  # from the resolver: the name resolves to a refused address (or none)
            if is_permanent_refusal(exc):
                return await self._refused(endpoint, exc, digest)
            log.info("webhook endpoint's host does not resolve", extra={"endpoint": endpoint.id, "detail": exc.detail})
            return await self._failed(endpoint, REFUSED, None, digest)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # The owner reads a category; the exception (with addresses) is for the operators' log.
            log.info("webhook delivery failed", extra={"endpoint": endpoint.id, "error": repr(exc)})
            return await self._failed(endpoint, failure_category(exc), None, digest)
        if 200 <= code < 300:
            if endpoint.failing_since is not None:
                await mark_healthy(self.ledger.engine, endpoint.id)
                self._endpoint.cache_invalidate(endpoint.id)
            return Outcome.sent(code, digest)
        snippet = clean_text(text, 200) or ""
        if 300 <= code < 400:
            error = f"HTTP {code}: redirects are not followed; register the final URL"
        else:
            error = f"HTTP {code}: {snippet}" if snippet else f"HTTP {code}"
        if code in (408, 429) or code >= 500:
            cap = s.sink_retry_after_max_s
            if retry_after is not None and retry_after > cap:
                error += f" (asked to wait {retry_after:g} s; waiting at most {cap:g} s)"
            return await self._failed(endpoint, error, code, digest, min(retry_after, cap) if retry_after else None)
        if code == 410:
            # Standard Webhooks: 410 Gone means the receiver is gone for good: stop sending to it at once (not after
            # days of failures) and tell its owner.
            await self._gone(endpoint, error)
            return Outcome.dead(
                f"{error}: the endpoint answered 410 Gone and is disabled; its owner was told",
                code=code,
                digest=digest,
                reason_code="endpoint_gone",
            )
        # 3xx and other 4xx: the endpoint refuses this delivery; retrying will not change its mind.
        await self._note_failure(endpoint, error)
        return Outcome.dead(error, code=code, digest=digest, reason_code="delivery_rejected")

    async def _refused(self, endpoint: Endpoint, exc: TargetRefused, digest: str) -> Outcome:
        """The URL became one the policy refuses: permanent, to the DLQ. Operators' log has the detail."""
        log.warning("webhook target refused by policy", extra={"endpoint": endpoint.id, "detail": exc.detail})
        await self._note_failure(endpoint, REFUSED)
        return Outcome.dead(f"{REFUSED}: {exc.reason}", digest=digest, reason_code="target_refused")

    async def _gone(self, endpoint: Endpoint, error: str) -> None:
        reason = clean_text(f"the receiver answered 410 Gone ({error})", 500) or "410 Gone"
        failing_since = await disable_gone(self.ledger.engine, endpoint.id, reason)
        self._endpoint.cache_invalidate(endpoint.id)
        if failing_since is not None:
            log.warning("webhook endpoint gone (410): disabled", extra={"endpoint": endpoint.id})
            await self._tell_owner(replace(endpoint, enabled=False, failing_since=failing_since), reason)

    async def _tell_owner(self, endpoint: Endpoint, reason: str) -> None:
        if self.notify_disabled is None:
            return
        try:
            await self.notify_disabled(endpoint, reason)
        except Exception:  # the notice is best effort; the delivery's outcome must still be recorded
            log.exception("could not tell the owner that their endpoint was disabled", extra={"endpoint": endpoint.id})

    async def _note_failure(self, endpoint: Endpoint, error: str) -> bool:
        disabled = await mark_failing(
            self.ledger.engine, endpoint.id, self.settings.webhook_disable_after_s, clean_text(error, 500) or "failed"
        )
        self._endpoint.cache_invalidate(endpoint.id)
        if disabled:
            log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.id, "user_id": endpoint.user_id})
            await self._tell_owner(endpoint, clean_text(error, 500) or "failed")
        return disabled

    async def _failed(
        self, endpoint: Endpoint, error: str, code: int | None, digest: str, retry_after: float | None = None
    ) -> Outcome:
        await self._note_failure(endpoint, error)
        return Outcome.failed(error, retry_in=retry_after or 0.0, code=code, digest=digest)
