"""Which URLs a sink may call: the one outbound-target policy of every sink that calls a URL (webhooks on
aiohttp, Discord on httpx). Webhook and Discord URLs come from users, so a worker must not become a proxy into
its own network (SSRF).

The policy works on the host string the HTTP client will actually connect to, never on a reading of its own:

1. the URL is parsed by the client's own URL library (yarl for aiohttp, httpx's for httpx) and by this
   module's normaliser (IDNA/UTS-46, which folds ideographic and fullwidth full stops and fullwidth, circled
   and other compatibility digits into ASCII); if the two disagree about the host the URL is refused;
2. a host that is a number (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1`` — the forms the C resolver
   accepts) is read as the IPv4 address it denotes; a host that looks numeric but is not a valid address is
   refused rather than handed to a resolver that may read it differently;
3. a name is resolved once, and every address it resolves to must pass ``deny_reason``;
4. the client connects to the addresses that were checked (``sinks/outbound.py``: an aiohttp resolver and an
   httpcore network backend that resolve through ``resolve_checked``), so a DNS answer that changes between
   the check and the connect (rebinding) is never used.

Private targets are allowed only with ``CROWNSTREAM_SINK_ALLOW_PRIVATE_TARGETS`` (tests, the local demo).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import idna

from crownstream.sinks.errors import DoesNotResolve as DoesNotResolve
from crownstream.sinks.errors import TargetRefused as TargetRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Client = Literal["aiohttp", "httpx"]
#: host, port -> addresses (strings); the default is the event loop's getaddrinfo. Injectable for tests.
Resolve = Callable[[str, int], Awaitable[list[str]]]

REFUSED = "target refused by policy"  # the category an endpoint's owner is shown


# --- the deny list ----------------------------------------------------------------------------------------
# Named explicitly (the message says which), beside ipaddress's flags, which catch the rest of IANA's
# special-purpose registries. Order matters only for the name in the message.
_V4_DENIED: list[tuple[str, str]] = [
    ("0.0.0.0/8", "'this network' (unspecified)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
]
_V6_DENIED: list[tuple[str, str]] = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2001:10::/28", "ORCHID"),
    ("2001:20::/28", "ORCHIDv2"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6)"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
]
_V4_NETS = [(ipaddress.ip_network(n), kind) for n, kind in _V4_DENIED]
_V6_NETS = [(ipaddress.ip_network(n), kind) for n, kind in _V6_DENIED]
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def deny_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination (a kind of address: "loopback", "private"…), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped (link-local)"
        if ip == ipaddress.IPv6Address("::1"):
            return "loopback"
        if ip == ipaddress.IPv6Address("::"):
            return "unspecified"
        # Addresses that carry an IPv4 address: the packets end up there, so that address decides.
        if ip.ipv4_mapped is not None:
            inner = deny_reason(ip.ipv4_mapped)
            return inner and f"IPv4-mapped {inner}"
        if ip in _IPV4_COMPATIBLE:  # ::a.b.c.d, deprecated (RFC 4291): never a real destination
            inner = deny_reason(ipaddress.IPv4Address(int(ip)))
            return f"IPv4-compatible {inner}" if inner else "IPv4-compatible (deprecated)"
        if ip in _NAT64:  # the well-known NAT64 prefix reaches the embedded IPv4 address through a gateway
            inner = deny_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return inner and f"NAT64 {inner}"
        if ip.sixtofour is not None:
            inner = deny_reason(ip.sixtofour)
            return inner and f"6to4 {inner}"
        for net, kind in _V6_NETS:
            if ip in net:
                return kind
    else:
        for net, kind in _V4_NETS:
            if ip in net:
                return kind
    for flag in ("is_loopback", "is_link_local", "is_multicast", "is_unspecified", "is_reserved", "is_private"):
        if getattr(ip, flag):
            return flag[3:].replace("_", "-")
    if getattr(ip, "is_site_local", False):
        return "site-local"
    if not ip.is_global:
        return "non-public"
    return None


def check_address(address: str | IPAddress, allow_private: bool) -> IPAddress:
    ip = (
        address
        if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address))
        else ipaddress.ip_address(address)
    )
    if allow_private:
        return ip
    kind = deny_reason(ip)
    if kind is not None:
        raise TargetRefused(
            f"{ip} is a non-public address ({kind}); outbound deliveries go to public addresses only "
            "(CROWNSTREAM_SINK_ALLOW_PRIVATE_TARGETS=true allows others, for a local setup)"
        )
    return ip


# --- reading a host as the client does --------------------------------------------------------------------
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


def normalise_host(host: str) -> str:
    """The ASCII host an IDNA/UTS-46 client connects to: case folded; for non-ASCII hosts the UTS-46 mapping
    (ideographic/fullwidth/halfwidth full stops become '.', compatibility digits such as fullwidth or circled
    ones become ASCII digits) and Punycode. Brackets of an IPv6 literal are removed."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        return host.lower()
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise TargetRefused(f"host {host!r} is not a valid internationalised domain name ({exc})") from None


def parse_ipv4_numeric(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` as the C resolver's inet_aton (and the WHATWG URL standard) would: 1-4 parts, each
    decimal, octal (leading 0) or hex (0x), the last one filling the remaining bytes; one trailing dot
    allowed. None if the host is a name; TargetRefused if it looks numeric but is no valid address."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]
    if not parts or not _NUMERIC_LABEL.match(parts[-1]):
        return None  # the last label is not a number: a domain name (WHATWG's rule)
    invalid = TargetRefused(f"host {host!r} looks like a numeric IPv4 address but is not a valid one")
    if len(parts) > 4:
        raise invalid
    numbers = []
    for part in parts:
        if not _NUMERIC_LABEL.match(part):
            raise invalid
        try:
            if part[:2].lower() == "0x":
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:  # e.g. '08': octal with a non-octal digit
            raise invalid from None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise invalid
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def host_address(host: str) -> IPAddress | None:
    """The address a (normalised) host denotes literally, or None for a name that needs resolving."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            raise TargetRefused(f"host {host!r} is not a valid IPv6 address") from None
    return parse_ipv4_numeric(host)


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str  # ASCII, as the client connects to it
    port: int
    address: IPAddress | None  # when the host is an address literal


_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def _client_host(url: str, client: Client) -> tuple[str, int]:
    if client == "aiohttp":
        import yarl

        parsed = yarl.URL(url)
        return parsed.raw_host or "", parsed.port or 0
    import httpx

    parsed = httpx.URL(url)
    return parsed.raw_host.decode("ascii"), parsed.port or (443 if parsed.scheme == "https" else 80)


# A pure function of its arguments, asked again for every delivery to the same URL (~0.25 ms each, the IDNA and
# numeric-address parsing): remembered per URL. Refusals raise, and exceptions are not cached.
@functools.lru_cache(maxsize=4096)
def parse_target(url: str, allow_private: bool, max_url_length: int = 2048, client: Client = "aiohttp") -> Target:
    """Everything that can be decided without DNS: syntax, the host as the client reads it, and the address
    when the host is a literal. Raises TargetRefused with a reason for the URL's author."""
    target = _parse(url, allow_private, max_url_length, client)
    _check_scheme(target, allow_private)
    return target


def _check_scheme(target: Target, allow_private: bool) -> None:
    if target.scheme == "http" and not allow_private:
        raise TargetRefused("plain http is refused; use https")


def _parse(url: str, allow_private: bool, max_url_length: int, client: Client) -> Target:
    if not isinstance(url, str) or not url:
        raise TargetRefused("the URL is empty")
    if len(url) > max_url_length:
        raise TargetRefused(f"the URL is {len(url)} characters long; at most {max_url_length} are accepted")
    if _FORBIDDEN_URL_CHARS.search(url):
        raise TargetRefused("the URL contains whitespace, control characters or a backslash; write it plainly")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"the URL cannot be parsed: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("only https URLs are delivered to")
    if "@" in parts.netloc:
        raise TargetRefused("credentials in the URL are refused")
    raw = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if not raw:
        raise TargetRefused("the URL has no host")
    if "%" in raw:
        raise TargetRefused("percent-encoded or scoped hosts are refused; write the host plainly")
    host = normalise_host(raw)
    try:
        seen, client_port = _client_host(url, client)
    except Exception as exc:  # the client itself would refuse to send it
        raise TargetRefused(f"the URL's host cannot be read ({type(exc).__name__}); write it in plain ASCII") from None
    address = host_address(host)
    seen_address = host_address(normalise_host(seen))
    if (address or host) != (seen_address or seen.lower()):
        raise TargetRefused(
            f"host {raw!r} is read differently by different URL parsers ({host!r}, {seen!r}); write it in plain ASCII"
        )
    if address is not None:  # before the scheme: "127.0.0.1 is a loopback address" is the reason that matters
        check_address(address, allow_private)
    elif not host.strip("."):
        raise TargetRefused("the URL has no host")
    return Target(url, parts.scheme, host, port or client_port or (443 if parts.scheme == "https" else 80), address)


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _name_refused(host: str, detail: str, cls: type[TargetRefused] = TargetRefused) -> TargetRefused:
    return cls(
        f"{host!r} does not resolve to public addresses only (it does not resolve, or resolves to a "
        "private, loopback or otherwise non-public address); outbound deliveries go to public addresses only",
        detail=f"{host!r}: {detail}",
    )


async def resolve_checked(host: str, port: int, allow_private: bool, resolve: Resolve | None = None) -> list[IPAddress]:
    """The addresses a client may connect to for ``host`` (a host string as the client passes it): read
    literally if it is a number, else resolved once; every address is checked, one refused address refuses
    the host. The caller connects to these and nothing else."""
    address = host_address(normalise_host(host))
    if address is not None:
        return [check_address(address, allow_private)]
    try:
        found = await (resolve or _getaddrinfo)(host, port)
    except (OSError, UnicodeError) as exc:
        raise _name_refused(host, f"does not resolve: {exc}", DoesNotResolve) from None
    if not found:
        raise _name_refused(host, "no addresses", DoesNotResolve)
    checked = []
    for value in found:
        try:
            checked.append(check_address(value, allow_private))
        except TargetRefused as exc:
            raise _name_refused(host, f"resolves to {value}: {exc.reason}") from None
        except ValueError:
            raise _name_refused(host, f"resolves to {value!r}, not an address") from None
    return checked


async def check_url(
    url: str,
    allow_private: bool,
    max_url_length: int = 2048,
    client: Client = "aiohttp",
    resolve: Resolve | None = None,
) -> Target:
    """The whole policy for a URL (registration, a delivery's pre-check): syntax and literal addresses, then
    the name's addresses. With private targets allowed nothing needs resolving (every address is allowed)."""
    target = _parse(url, allow_private, max_url_length, client)
    if target.address is None and not allow_private:
        await resolve_checked(target.host, target.port, allow_private, resolve)
    _check_scheme(target, allow_private)  # last: where the URL points is the reason that matters most
    return target
