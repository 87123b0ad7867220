"""A webhook receiver that verifies every delivery's signature — v1 (HMAC) with the reference ``standardwebhooks``
verifier, v1a (Ed25519) with ``crownstream.sinks.signing.verify_v1a`` — and counts deliveries by ``webhook-id``, what
the Standard Webhooks spec tells receivers to deduplicate by. A hook's key says which: a ``whsec_`` secret or a
``whpk_`` public key, as the endpoint's owner was given it."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from crownstream.devpeers._thread import ThreadedServer
from crownstream.sinks.signing import PUBLIC_KEY_PREFIX, WebhookVerificationError, public_key, verify_v1a


@dataclass
class Hook:
    secret: str
    fail_first: int = 0  # answer 500 to this many requests, then 2xx
    always_fail: bool = False
    delay_s: float = 0.0
    requests: int = 0
    answer: tuple[int, bytes, dict] | None = None  # a fixed answer to every verified request (a misbehaving peer)


@dataclass
class Received:
    raw: Counter = field(default_factory=Counter)  # webhook-id -> requests that verified
    successes: Counter = field(default_factory=Counter)  # webhook-id -> 2xx answers given
    bodies: dict = field(default_factory=dict)  # webhook-id -> parsed body (last)
    traceparents: dict = field(default_factory=dict)  # webhook-id -> W3C traceparent header (last)
    arrivals: list = field(default_factory=list)  # time.monotonic() of each request that verified, in order
    bad_signatures: int = 0
    failures_answered: int = 0


@functools.lru_cache(maxsize=256)
def _verifier(secret: str) -> Webhook:
    return Webhook(secret)


def _verify(key: str, body: bytes, headers: dict[str, str]) -> None:
    if key.startswith(PUBLIC_KEY_PREFIX):
        verify_v1a(body, headers, public_key(key))
    else:
        _verifier(key).verify(body, headers, json_parse=False)


class WebhookReceiver(ThreadedServer):
    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.hooks: dict[str, Hook] = {}
        self.received: dict[str, Received] = {}

    def add(
        self,
        name: str,
        secret: str,
        *,
        fail_first: int = 0,
        always_fail: bool = False,
        delay_s: float = 0.0,
        answer: tuple[int, bytes, dict] | None = None,
    ) -> str:
        with self.lock:
            self.hooks[name] = Hook(secret, fail_first, always_fail, delay_s, answer=answer)
            self.received.setdefault(name, Received())
        return f"{self.base_url}/hooks/{name}"

    def set_secret(self, name: str, secret: str) -> None:
        with self.lock:
            self.hooks[name].secret = secret

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._handle)
        app.router.add_post("/redirect", self._redirect)
        app.router.add_get("/stats", self._stats)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        """Counts for a receiver running in another process (the benchmark, the demo)."""
        with self.lock:
            return web.json_response(
                {
                    name: {
                        "ids": len(got.successes),
                        "successes": sum(got.successes.values()),
                        "raw": sum(got.raw.values()),
                        "bad_signatures": got.bad_signatures,
                    }
                    for name, got in self.received.items()
                }
            )

    async def _redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": f"{self.base_url}/hooks/x"})

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        hook = self.hooks.get(name)
        if hook is None:
            return web.Response(status=404, text="no such hook")
        body = await request.read()
        got = self.received[name]
        try:
            # Each key decoded once (cached); the body parsed with
            # orjson rather than its json.loads: the benchmark's receiver must cost less than the sink it measures.
            _verify(hook.secret, body, dict(request.headers))
        except WebhookVerificationError as exc:
            with self.lock:
                got.bad_signatures += 1
            return web.Response(status=401, text=f"signature: {exc}")
        parsed = orjson.loads(body)
        msg_id = request.headers["webhook-id"]
        with self.lock:
            hook.requests += 1
            got.raw[msg_id] += 1
            got.arrivals.append(time.monotonic())
            fail = hook.always_fail or hook.requests <= hook.fail_first
            if fail:
                got.failures_answered += 1
        if hook.delay_s:
            await asyncio.sleep(hook.delay_s)
        if hook.answer is not None:
            status, answer_body, headers = hook.answer
            return web.Response(status=status, body=answer_body, headers=headers)
        if fail:
            return web.Response(status=503, text="try again later")
        with self.lock:
            got.successes[msg_id] += 1
            got.bodies[msg_id] = parsed
            if "traceparent" in request.headers:
                got.traceparents[msg_id] = request.headers["traceparent"]
        return web.Response(status=204)

    # --- what tests read -------------------------------------------------------------------------------
    def successes_by_id(self, name: str | None = None) -> Counter:
        with self.lock:
            total: Counter = Counter()
            for hook_name, got in self.received.items():
                if name is None or hook_name == name:
                    total.update(got.successes)
            return total

    def arrivals(self, name: str) -> list[float]:
        """When each verified request to ``name`` came (monotonic seconds): how a rate limit was kept."""
        with self.lock:
            return list(self.received[name].arrivals)

    def bad_signatures(self) -> int:
        with self.lock:
            return sum(got.bad_signatures for got in self.received.values())


def serve_forever(port: int, hooks: dict[str, str]) -> None:
    """Run a receiver in this (child) process until it is terminated: ``hooks`` maps name -> secret."""
    import threading

    receiver = WebhookReceiver(port)
    for name, secret in hooks.items():
        receiver.add(name, secret)
    receiver.start()
    threading.Event().wait()
