"""Discord sink: execute-webhook with rich embeds (discord_payload.py keeps them within the limits).

Rate limits follow Discord's documented headers per webhook: ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset-After`` of the last answer say when the next request may go; a 429's ``retry_after``
(seconds, JSON body or Retry-After) is waited out and the request retried. Sends to one webhook are
serialised (a lock per webhook URL) and wait only for that webhook's bucket — other webhooks keep flowing.
After ``CROWNSTREAM_DISCORD_MAX_429_WAITS`` waits in place the delivery goes back to the ledger as a retry.

Every wait Discord (or whatever answers at the URL) asks for is capped: one above ``IN_PLACE_WAIT_MAX_S``
is not slept on while holding a send slot — the delivery goes back to the ledger (a bucket wait: handed
back unattempted; a 429: a failed attempt, rescheduled no later than ``CROWNSTREAM_SINK_RETRY_AFTER_MAX_S``).
The URL passes the outbound-target policy (sinks/targets.py) and the connection goes only to the addresses
it checked (sinks/outbound.py); one request, connect to last byte, has ``CROWNSTREAM_DISCORD_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson
from async_lru import alru_cache

from crownstream.sinks.base import Sink
from crownstream.sinks.discord_payload import build_payload
from crownstream.sinks.ledger import Claimed, Outcome, clean_text
from crownstream.sinks.outbound import failure_category, guarded_transport, is_permanent_refusal, read_capped_httpx
from crownstream.sinks.retry import parse_delay
from crownstream.sinks.suppressions import discord_gone, mark_discord_gone, url_digest
from crownstream.sinks.targets import REFUSED, TargetRefused, parse_target

log = logging.getLogger(__name__)

# Longest wait slept in place holding a send slot (a bucket's reset, a 429's retry_after); longer ones go
# back to the ledger. Discord's own per-webhook windows are a few seconds. (A module constant rather than a
# setting: the caller-visible cap is CROWNSTREAM_SINK_RETRY_AFTER_MAX_S.)
IN_PLACE_WAIT_MAX_S = 10.0
GONE_CACHE_S = 5.0  # how stale a worker's view of the gone webhooks may be
GONE_CACHE_SIZE = 100_000
# Told when a user's Discord webhook turns out deleted: (user id, the URL's SHA-256, Discord's answer).
NotifyGone = Callable[[str, str, str], Awaitable[None]]


@dataclass
class Bucket:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    remaining: int | None = None
    reset_at: float = 0.0  # monotonic

    def update(self, headers: httpx.Headers, cap_s: float) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.strip().isdigit() and len(remaining.strip()) < 10:
            self.remaining = int(remaining)
        reset_after = parse_delay(headers.get("x-ratelimit-reset-after"))
        if reset_after is not None:
            self.reset_at = time.monotonic() + min(reset_after, cap_s)

    def wait_s(self) -> float:
        if self.remaining == 0:
            return max(0.0, self.reset_at - time.monotonic())
        return 0.0


def is_global(body: bytes, headers: httpx.Headers) -> bool:
    """A 429 of Discord's global limit (``X-RateLimit-Global: true`` or ``"global": true``), not one bucket's."""
    if headers.get("x-ratelimit-global", "").strip().lower() == "true":
        return True
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("global") is True


def retry_after_s(body: bytes, headers: httpx.Headers) -> float | None:
    """A 429's wait: the JSON body's ``retry_after``, else Retry-After, else X-RateLimit-Reset-After. May be
    inf (``1e999``); None if none is a usable number."""
    try:
        # The standard library's parser, not orjson: it reads 1e999 as inf (which the cap then handles), where
        # orjson refuses the whole body and the wait asked for would be lost.
        parsed = json.loads(body) if body else None
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        value = parse_delay(parsed.get("retry_after"))
        if value is not None:
            return value
    for header in ("retry-after", "x-ratelimit-reset-after"):
        value = parse_delay(headers.get(header))
        if value is not None:
            return value
    return None


class DiscordSink(Sink):
    channel = "discord"
    circuit_breaker = True

    def __init__(self, settings, ledger, notify_gone: NotifyGone | None = None) -> None:
        super().__init__(settings, ledger)
        self.notify_gone = notify_gone
        # Discord's global limit (a 429 with "global": true) stops every webhook of this worker, not one bucket.
        self._global_until = 0.0

    def target_of(self, claimed: Claimed) -> str:
        return claimed.request.contact.discord_webhook_url or ""

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            transport=guarded_transport(self.settings.sink_allow_private_targets),
            follow_redirects=False,
            trust_env=False,
            timeout=self.settings.discord_timeout_s,
            # Uncompressed answers: the body is read up to a cap, raw.
            headers={"user-agent": "Crownstream (https://crownstream.invalid, 1)", "accept-encoding": "identity"},
        )
        self._buckets: dict[str, Bucket] = {}

        @alru_cache(maxsize=GONE_CACHE_SIZE, ttl=GONE_CACHE_S)
        async def gone(url_sha256: str) -> str | None:
            return await discord_gone(self.ledger.engine, url_sha256)

        self._gone = gone

    async def stop(self) -> None:
        await self._client.aclose()

    async def _post(self, url: str, body: bytes) -> tuple[int, httpx.Headers, bytes]:
        s = self.settings
        # httpx's timeouts are per phase (connect, each read, …): one deadline covers the whole request.
        async with asyncio.timeout(s.discord_timeout_s):
            async with self._client.stream(
                "POST", url, params={"wait": "true"}, content=body, headers={"content-type": "application/json"}
            ) as response:
                text, _ = await read_capped_httpx(response, s.sink_response_body_max_bytes)
                return response.status_code, response.headers, text

    async def deliver(self, claimed: Claimed) -> Outcome:
        s = self.settings
        url = claimed.request.contact.discord_webhook_url
        if not url:
            return Outcome.dead("the request has no contact.discord_webhook_url")
        try:
            parse_target(url, s.sink_allow_private_targets, s.sink_max_url_length, client="httpx")
        except TargetRefused as exc:
            log.warning(
                "discord target refused by policy", extra={"dedup_key": claimed.dedup_key, "detail": exc.detail}
            )
            return Outcome.dead(f"{REFUSED}: {exc.reason}", reason_code="target_refused")
        url_sha256 = url_digest(url)
        known_gone = await self._gone(url_sha256)
        if known_gone is not None:
            return Outcome.dead(
                f"this Discord webhook no longer exists ({known_gone}); the user must set a new one",
                reason_code="webhook_gone",
            )
        body = orjson.dumps(build_payload(claimed.request))
        digest = hashlib.sha256(body).hexdigest()
        bucket = self._buckets.setdefault(url, Bucket())
        cap = s.sink_retry_after_max_s
        waits = 0
        async with bucket.lock:
            while True:
                wait = max(bucket.wait_s(), self._global_until - time.monotonic())
                if wait > IN_PLACE_WAIT_MAX_S:  # not slept on holding a slot: back to the ledger, unattempted
                    return Outcome.deferred(min(wait, cap))
                await asyncio.sleep(wait)
                try:
                    code, headers, text = await self._post(url, body)
                except TargetRefused as exc:  # from the transport: the name resolves to a refused address
                    log.warning("discord target refused", extra={"dedup_key": claimed.dedup_key, "detail": exc.detail})
                    if is_permanent_refusal(exc):
                        return Outcome.dead(f"{REFUSED}: {exc.reason}", digest=digest, reason_code="target_refused")
                    return Outcome.failed(REFUSED, retry_in=0.0, digest=digest)
                except (TimeoutError, httpx.HTTPError, OSError) as exc:
                    log.info("discord delivery failed", extra={"dedup_key": claimed.dedup_key, "error": repr(exc)})
                    return Outcome.failed(failure_category(exc), retry_in=0.0, digest=digest)
                bucket.update(headers, cap)
                if 200 <= code < 300:
                    return Outcome.sent(code, digest)
                if code == 429:
                    delay = retry_after_s(text, headers)
                    waits += 1
                    if delay is None:
                        delay = 1.0
                    if is_global(text, headers):
                        # Every webhook of this worker waits, not only this bucket (Discord's global limit).
                        self._global_until = max(self._global_until, time.monotonic() + min(delay, cap))
                    if delay > cap:
                        bucket.remaining, bucket.reset_at = 0, time.monotonic() + cap
                        return Outcome.failed(
                            f"HTTP 429: asked to wait {delay:g} s; waiting at most {cap:g} s",
                            retry_in=cap,
                            code=code,
                            digest=digest,
                        )
                    if waits > s.discord_max_429_waits or delay > IN_PLACE_WAIT_MAX_S:
                        bucket.remaining, bucket.reset_at = 0, time.monotonic() + delay
                        return Outcome.failed(
                            f"HTTP 429 {waits} times in a row", retry_in=delay, code=code, digest=digest
                        )
                    bucket.remaining, bucket.reset_at = 0, time.monotonic() + delay
                    continue
                snippet = clean_text(text, 300) or ""
                error = f"HTTP {code}: {snippet}" if snippet else f"HTTP {code}"
                if code == 408 or code >= 500:
                    return Outcome.failed(error, retry_in=0.0, code=code, digest=digest)
                if code == 404:
                    # Unknown Webhook: deleted in Discord. Never called again; its owner is told to set a new one.
                    await self._mark_gone(claimed, url_sha256, error)
                    return Outcome.dead(
                        f"{error}: the Discord webhook no longer exists; not called again, its owner was told",
                        code=code,
                        digest=digest,
                        reason_code="webhook_gone",
                    )
                # 3xx (never followed) and other 4xx (bad payload, forbidden webhook): will not improve.
                return Outcome.dead(error, code=code, digest=digest, reason_code="delivery_rejected")

    async def _mark_gone(self, claimed: Claimed, url_sha256: str, error: str) -> None:
        user_id = claimed.request.user_id
        first = await mark_discord_gone(self.ledger.engine, url_sha256, user_id, error)
        self._gone.cache_invalidate(url_sha256)
        if first and self.notify_gone is not None:
            try:
                await self.notify_gone(user_id, url_sha256, error)
            except Exception:  # best effort: the delivery's outcome must still be recorded
                log.exception("could not tell the user their Discord webhook is gone", extra={"user_id": user_id})
