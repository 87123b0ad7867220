"""The HTTP clients' side of the outbound-target policy (sinks/targets.py), and the caps on what a receiver
controls: both clients connect only to addresses ``resolve_checked`` returned, never follow redirects, never
read more of an answer than ``CROWNSTREAM_SINK_RESPONSE_BODY_MAX_BYTES``, and their failures are reported to an
endpoint's owner as a category, never as an exception text with internal addresses (a port scanner's
oracle)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from crownstream.sinks.targets import REFUSED, DoesNotResolve, TargetRefused, resolve_checked

log = logging.getLogger(__name__)


# --- aiohttp ----------------------------------------------------------------------------------------------
def pinned_resolver(allow_private: bool):
    """An aiohttp resolver that resolves once through the policy and hands aiohttp the checked addresses:
    aiohttp connects to exactly those. (aiohttp skips resolvers for IP literals; the webhook sink checks
    those up front with parse_target, on the same yarl host.)"""
    from aiohttp.abc import AbstractResolver

    class PinnedResolver(AbstractResolver):
        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
            addresses = await resolve_checked(host, port, allow_private)
            return [
                {
                    "hostname": host,
                    "host": str(ip),
                    "port": port,
                    "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
                for ip in addresses
            ]

        async def close(self) -> None:
            pass

    return PinnedResolver()


async def read_capped_aiohttp(response, cap: int) -> tuple[bytes, bool]:
    """Up to ``cap`` bytes of the body, and whether it was cut (the connection is then closed, not drained)."""
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await response.content.read(cap - size)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    cut = not response.content.at_eof()
    if cut:
        response.close()
    return b"".join(chunks), cut


# --- httpx ------------------------------------------------------------------------------------------------
def guarded_transport(allow_private: bool, ssl_context: ssl.SSLContext | None = None):
    """An httpx transport whose connections are opened by ``GuardedBackend``: the URL keeps its host name (so
    the Host header, TLS SNI and certificate verification are the original name's), the TCP connection goes
    to an address the policy checked."""
    import httpcore
    import httpx

    class GuardedBackend(httpcore.AsyncNetworkBackend):
        def __init__(self) -> None:
            self._inner = httpcore.AnyIOBackend()

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            last: Exception | None = None
            for ip in await resolve_checked(host, port, allow_private):
                try:
                    return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
                except httpcore.ConnectError as exc:  # nothing was sent yet: the next address may answer
                    last = exc
            assert last is not None
            raise last

        async def connect_unix_socket(self, path, timeout=None, socket_options=None):
            raise TargetRefused("unix sockets are not an outbound target")

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
        network_backend=GuardedBackend(),
        retries=0,
    )
    return transport


async def read_capped_httpx(response, cap: int) -> tuple[bytes, bool]:
    """Up to ``cap`` raw bytes (never decompressed: a small compressed answer can be a huge decoded one)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= cap:
            body = b"".join(chunks)
            return body[:cap], True
    return b"".join(chunks), False


# --- what a failure is called -----------------------------------------------------------------------------
def failure_category(exc: BaseException) -> str:
    """A category for an owner to read: "timed out", "TLS error", "connection refused", "connection failed",
    "target refused by policy". The exception itself goes to the operators' log (with addresses)."""
    if isinstance(exc, TargetRefused):
        return REFUSED
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in type(exc).__name__:
        return "timed out"
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(
        isinstance(e, ssl.SSLError) or "SSL" in type(e).__name__ or "Certificate" in type(e).__name__ for e in chain
    ):
        return "TLS error"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in str(exc).lower():
        return "connection refused"
    if any(isinstance(e, (TimeoutError, asyncio.TimeoutError)) for e in chain):
        return "timed out"
    return "connection failed"


def is_permanent_refusal(exc: BaseException) -> bool:
    """A target refused by policy is permanent (its owner must change the URL); a name that does not resolve
    right now is retried (DNS may be back)."""
    return isinstance(exc, TargetRefused) and not isinstance(exc, DoesNotResolve)
