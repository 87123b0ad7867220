"""A stand-in for Discord's execute-webhook endpoint (POST /api/webhooks/{id}/{token}) that enforces the
documented size limits (400 with Discord's error shape when exceeded) and rate-limits each webhook with the
documented headers (X-RateLimit-Limit, -Remaining, -Reset, -Reset-After, -Bucket) and 429 answers whose JSON
body carries ``retry_after``."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass

from aiohttp import web

from crownstream.devpeers._thread import ThreadedServer
from crownstream.sinks import discord_payload as limits


def limit_violations(payload: dict) -> list[str]:
    problems = []
    if len(payload.get("content") or "") > limits.CONTENT_MAX:
        problems.append("content: Must be 2000 or fewer in length.")
    embeds = payload.get("embeds") or []
    if len(embeds) > limits.EMBEDS_MAX:
        problems.append("embeds: Must be 10 or fewer in length.")
    if not payload.get("content") and not embeds:
        problems.append("Cannot send an empty message")
    total = 0
    for i, e in enumerate(embeds):
        if len(e.get("title", "")) > limits.TITLE_MAX:
            problems.append(f"embeds.{i}.title: Must be 256 or fewer in length.")
        if len(e.get("description", "")) > limits.DESCRIPTION_MAX:
            problems.append(f"embeds.{i}.description: Must be 4096 or fewer in length.")
        fields = e.get("fields", [])
        if len(fields) > limits.FIELDS_MAX:
            problems.append(f"embeds.{i}.fields: Must be 25 or fewer in length.")
        for j, f in enumerate(fields):
            if not f.get("name") or len(f["name"]) > limits.FIELD_NAME_MAX:
                problems.append(f"embeds.{i}.fields.{j}.name: Must be between 1 and 256 in length.")
            if not f.get("value") or len(f["value"]) > limits.FIELD_VALUE_MAX:
                problems.append(f"embeds.{i}.fields.{j}.value: Must be between 1 and 1024 in length.")
        if len(e.get("footer", {}).get("text", "")) > limits.FOOTER_MAX:
            problems.append(f"embeds.{i}.footer.text: Must be 2048 or fewer in length.")
        total += limits.embed_length(e)
    if total > limits.TOTAL_MAX:
        problems.append("embeds: Embed size exceeds maximum size of 6000")
    return problems


@dataclass
class _Bucket:
    window_start: float = 0.0
    used: int = 0


class DiscordStandIn(ThreadedServer):
    def __init__(
        self,
        port: int | None = None,
        limit: int = 5,
        per_s: float = 2.0,
        force_429: int = 0,
        forced_retry_after_s: float = 0.5,
    ) -> None:
        """``force_429``: answer this many first requests per webhook with 429 whatever the bucket says (as
        Discord does when a shared or global limit is hit, which the per-webhook headers do not show).
        ``script(hook, status, body, headers)``: answer every request to that webhook so (a misbehaving peer)."""
        super().__init__(port)
        self.scripted: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.scripted_answers: Counter = Counter()
        self.limit, self.per_s = limit, per_s
        self.force_429, self.forced_retry_after_s = force_429, forced_retry_after_s
        self._forced: Counter = Counter()
        self.forced_429s = 0  # 429s from force_429
        self.early_requests: list[float] = []  # seconds early, of requests sent before a 429's retry_after ran out
        self._blocked_until: dict[str, float] = {}
        self._buckets: dict[str, _Bucket] = defaultdict(_Bucket)
        self.messages: dict[str, list[dict]] = defaultdict(list)
        self.rejected_for_size = 0
        self.rate_limited = 0
        self.by_title: Counter = Counter()
        self.deleted: set[str] = set()  # webhooks deleted in "Discord": 404 Unknown Webhook
        self.unknown_webhook_answers: Counter = Counter()
        self._global_until = 0.0  # Discord's global limit: every webhook gets 429 "global" until then
        self.global_429s = 0
        self._global_started = 0.0
        # Requests that met the global limit after the first one, by seconds since it began: those sent by a client
        # that had already been told (not just in flight at that moment) show it ignored the limit.
        self.requests_during_global: list[float] = []

    def webhook_url(self, name: str) -> str:
        return f"{self.base_url}/api/webhooks/{name}/token-{name}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/webhooks/{id}/{token}", self._handle)
        return app

    def delete(self, hook: str) -> None:
        """The webhook is deleted: Discord answers 404 Unknown Webhook (code 10015) from now on."""
        with self.lock:
            self.deleted.add(hook)

    def hit_global_limit(self, seconds: float) -> None:
        """The next request, to whatever webhook, meets Discord's global limit: 429 with ``"global": true`` and
        ``X-RateLimit-Global``, and every request until it runs out is refused the same way (and counted early)."""
        with self.lock:
            self._global_pending = seconds

    _global_pending = 0.0

    def script(self, hook: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> str:
        with self.lock:
            self.scripted[hook] = (status, body, headers or {})
        return self.webhook_url(hook)

    async def _handle(self, request: web.Request) -> web.Response:
        hook = request.match_info["id"]
        now = time.monotonic()
        with self.lock:
            if hook in self.scripted:
                status, body, headers = self.scripted[hook]
                self.scripted_answers[hook] += 1
                return web.Response(status=status, body=body, headers=headers, content_type="application/json")
            if hook in self.deleted:
                self.unknown_webhook_answers[hook] += 1
                return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
            if self._global_pending:
                self._global_started, self._global_until = now, now + self._global_pending
                self._global_pending = 0.0
            if now < self._global_until:
                if self.global_429s:
                    self.requests_during_global.append(now - self._global_started)
                self.global_429s += 1
                wait = round(self._global_until - now, 3)
                return web.json_response(
                    {"message": "You are being rate limited.", "retry_after": wait, "global": True},
                    status=429,
                    headers={"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global", "Retry-After": str(wait)},
                )
            if now < self._blocked_until.get(hook, 0.0):
                self.early_requests.append(self._blocked_until[hook] - now)
            if self._forced[hook] < self.force_429:
                self._forced[hook] += 1
                self.forced_429s += 1
                self._blocked_until[hook] = now + self.forced_retry_after_s
                return web.json_response(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": self.forced_retry_after_s,
                        "global": False,
                    },
                    status=429,
                    headers={"X-RateLimit-Scope": "shared"},
                )
            bucket = self._buckets[hook]
            if now - bucket.window_start >= self.per_s:
                bucket.window_start, bucket.used = now, 0
            reset_after = max(0.0, bucket.window_start + self.per_s - now)
            if bucket.used >= self.limit:
                self.rate_limited += 1
                self._blocked_until[hook] = now + reset_after
                headers = self._headers(hook, 0, reset_after)
                return web.json_response(
                    {"message": "You are being rate limited.", "retry_after": round(reset_after, 3), "global": False},
                    status=429,
                    headers={**headers, "Retry-After": str(max(1, round(reset_after)))},
                )
            bucket.used += 1
            remaining = self.limit - bucket.used
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response({"code": 50109, "message": "The request body contains invalid JSON."}, status=400)
        problems = limit_violations(payload)
        headers = self._headers(hook, remaining, reset_after)
        if problems:
            with self.lock:
                self.rejected_for_size += 1
            return web.json_response(
                {"code": 50035, "message": "Invalid Form Body", "errors": problems}, status=400, headers=headers
            )
        with self.lock:
            self.messages[hook].append(payload)
            for e in payload.get("embeds", [])[:1]:
                self.by_title[e.get("title")] += 1
        return web.json_response({"id": str(len(self.messages[hook])), "webhook_id": hook}, headers=headers)

    def _headers(self, hook: str, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"bucket-{hook}",
        }

    def count(self, hook: str | None = None) -> int:
        with self.lock:
            return sum(len(v) for k, v in self.messages.items() if hook is None or k == hook)
