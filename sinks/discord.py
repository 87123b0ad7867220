"""Discord sink: execute-webhook with rich embeds (discord_payload.py keeps them within the limits).

Rate limits follow Discord's documented headers per webhook: ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset-After`` of the last answer say when the next request may go; a 429's ``retry_after``
(seconds, JSON body or Retry-After) is waited out and the request retried. Sends to one webhook are
serialised (a lock per webhook URL) and wait only for that webhook's bucket — other webhooks keep flowing.
After ``CROWNSTREAM_DISCORD_MAX_429_WAITS`` waits in place the delivery goes back to the ledger as a retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field

import httpx
import orjson

from crownstream.sinks.base import Sink
from crownstream.sinks.discord_payload import build_payload
from crownstream.sinks.ledger import Claimed, Outcome
from crownstream.sinks.targets import TargetRefused, check_url


@dataclass
class Bucket:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    remaining: int | None = None
    reset_at: float = 0.0  # monotonic

    def update(self, headers: httpx.Headers) -> None:
        try:
            if "x-ratelimit-remaining" in headers:
                self.remaining = int(headers["x-ratelimit-remaining"])
            if "x-ratelimit-reset-after" in headers:
                self.reset_at = time.monotonic() + float(headers["x-ratelimit-reset-after"])
        except ValueError:
            pass

    def wait_s(self) -> float:
        if self.remaining == 0:
            return max(0.0, self.reset_at - time.monotonic())
        return 0.0


def retry_after_s(response: httpx.Response) -> float:
    try:
        body = response.json()
        if isinstance(body, dict) and "retry_after" in body:
            return max(0.0, float(body["retry_after"]))
    except ValueError:
        pass
    for header in ("retry-after", "x-ratelimit-reset-after"):
        try:
            return max(0.0, float(response.headers[header]))
        except (KeyError, ValueError):
            continue
    return 1.0


class DiscordSink(Sink):
    channel = "discord"

    def target_of(self, claimed: Claimed) -> str:
        return claimed.request.contact.discord_webhook_url or ""

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.settings.discord_timeout_s, follow_redirects=False,
                                         headers={"user-agent": "Crownstream (https://crownstream.invalid, 1)"})
        self._buckets: dict[str, Bucket] = {}

    async def stop(self) -> None:
        await self._client.aclose()

    async def deliver(self, claimed: Claimed) -> Outcome:
        url = claimed.request.contact.discord_webhook_url
        if not url:
            return Outcome.dead("the request has no contact.discord_webhook_url")
        try:
            await check_url(url, self.settings.sink_allow_private_targets)
        except TargetRefused as exc:
            return Outcome.dead(str(exc))
        body = orjson.dumps(build_payload(claimed.request))
        digest = hashlib.sha256(body).hexdigest()
        bucket = self._buckets.setdefault(url, Bucket())
        waits = 0
        async with bucket.lock:
            while True:
                await asyncio.sleep(bucket.wait_s())
                try:
                    response = await self._client.post(url, params={"wait": "true"}, content=body,
                                                       headers={"content-type": "application/json"})
                except httpx.HTTPError as exc:
                    return Outcome.failed(f"{type(exc).__name__}: {exc}", retry_in=0.0, digest=digest)
                bucket.update(response.headers)
                code = response.status_code
                if 200 <= code < 300:
                    return Outcome.sent(code, digest)
                if code == 429:
                    delay = retry_after_s(response)
                    waits += 1
                    if waits > self.settings.discord_max_429_waits:
                        return Outcome.failed(f"HTTP 429 {waits} times in a row", retry_in=delay, code=code, digest=digest)
                    bucket.remaining, bucket.reset_at = 0, time.monotonic() + delay
                    continue
                error = f"HTTP {code}: {response.text[:300]}"
                if code in (400, 401, 403, 404):  # bad payload, deleted or forbidden webhook: will not improve
                    return Outcome.dead(error, code=code, digest=digest)
                return Outcome.failed(error, retry_in=0.0, code=code, digest=digest)
