"""Which URLs a sink may call. Outbound webhooks and Discord URLs come from users, so a worker must not be
turned into a proxy into its own network (SSRF): private, loopback, link-local, multicast and reserved
addresses are refused unless ``CROWNSTREAM_SINK_ALLOW_PRIVATE_TARGETS`` is set (tests, the local demo)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    pass


def check_address(address: str, allow_private: bool) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if allow_private or ip.is_global:
        return
    kind = ("loopback" if ip.is_loopback else "link-local" if ip.is_link_local else
            "private" if ip.is_private else "non-public")
    raise TargetRefused(f"{address} is a {kind} address; outbound deliveries go to public addresses only "
                        "(set CROWNSTREAM_SINK_ALLOW_PRIVATE_TARGETS=true for a local setup)")


def check_url_syntax(url: str, allow_private: bool) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise TargetRefused(f"{url!r}: only https URLs are delivered to")
    if parts.scheme == "http" and not allow_private:
        raise TargetRefused(f"{url!r}: plain http is refused; use https")
    if not parts.hostname:
        raise TargetRefused(f"{url!r} has no host")
    if parts.username or parts.password:
        raise TargetRefused(f"{url!r}: credentials in the URL are refused")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def check_url_literal(url: str, allow_private: bool) -> None:
    """Syntax, and the address itself when the host is an IP literal (which no resolver ever sees)."""
    host, _ = check_url_syntax(url, allow_private)
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return
    check_address(host, allow_private)


class GuardedResolver:
    """An aiohttp resolver that refuses non-public addresses at connect time — checking the URL beforehand
    and connecting later would let a DNS answer change in between (DNS rebinding)."""

    def __init__(self, allow_private: bool) -> None:
        from aiohttp.resolver import DefaultResolver

        self.allow_private = allow_private
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check_address(result["host"], self.allow_private)
        return results

    async def close(self) -> None:
        await self._inner.close()


async def check_url(url: str, allow_private: bool) -> None:
    """Refuse the URL unless every address its host resolves to is allowed."""
    host, port = check_url_syntax(url, allow_private)
    try:
        check_address(host, allow_private)
        return
    except ValueError as exc:
        if isinstance(exc, TargetRefused):
            raise
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"{host!r} does not resolve: {exc}") from None
    for info in infos:
        check_address(info[4][0], allow_private)
