"""The outbound-target policy (sinks/targets.py), form by form: every way of writing a loopback, private or
otherwise non-public address that a URL library or the C resolver reads as one is refused, and the policy
reads each host as the HTTP clients do (yarl for aiohttp, httpx) and as getaddrinfo does."""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest
import yarl

from crownstream.sinks.retry import RetryPolicy, parse_delay
from crownstream.sinks.targets import (
    DoesNotResolve,
    TargetRefused,
    check_url,
    deny_reason,
    host_address,
    normalise_host,
    parse_ipv4_numeric,
    parse_target,
    resolve_checked,
)

# Host forms (as written in a URL's authority) that must be refused: (form, the address it denotes or None
# when it is refused for being malformed/ambiguous rather than for its address).
LOOPBACK_FORMS = [
    ("127.0.0.1", "127.0.0.1"),
    ("127\u30020\u30020\u30021", "127.0.0.1"),  # ideographic full stop
    ("127\uff0e0\uff0e0\uff0e1", "127.0.0.1"),  # fullwidth full stop
    ("127\uff610\uff610\uff611", "127.0.0.1"),  # halfwidth ideographic full stop
    ("\u2460\u2461\u2466.0.0.1", "127.0.0.1"),  # circled digits ①②⑦
    ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127.0.0.1"),  # fullwidth digits
    ("\U0001d7cf\U0001d7d0\U0001d7d5.0.0.1", "127.0.0.1"),  # mathematical bold digits
    ("\u246b\u2466.1", "127.0.0.1"),  # ⑫⑦.1: circled twelve, then shorthand
    ("\u2460\u2461\u2466\u3002\u24ea\u3002\u24ea\u3002\u2460", "127.0.0.1"),  # circled digits and ideographic stops
    ("2130706433", "127.0.0.1"),  # one decimal number
    ("0x7f000001", "127.0.0.1"),  # one hex number
    ("017700000001", "127.0.0.1"),  # one octal number
    ("0177.0.0.1", "127.0.0.1"),  # octal part
    ("0x7f.1", "127.0.0.1"),  # hex part, shorthand
    ("0X7F.0.0.1", "127.0.0.1"),
    ("\uff10\uff58\uff17\uff46.\uff11", "127.0.0.1"),  # fullwidth ０ｘ７ｆ.１
    ("127.1", "127.0.0.1"),  # shorthand
    ("127.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),  # trailing dot
    ("127.255.255.254", "127.255.255.254"),
    ("[::1]", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),  # IPv4-mapped
    ("[0:0:0:0:0:ffff:7f00:1]", "::ffff:127.0.0.1"),
    ("[::127.0.0.1]", "::127.0.0.1"),  # IPv4-compatible
    ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1"),  # NAT64 of 127.0.0.1
    ("[2002:7f00:1::1]", "2002:7f00:1::1"),  # 6to4 of 127.0.0.1
]
PRIVATE_FORMS = [
    ("0", "0.0.0.0"),
    ("0.0.0.0", "0.0.0.0"),
    ("[::]", "::"),
    ("10.0.0.1", "10.0.0.1"),
    ("0x0a.0.0.1", "10.0.0.1"),
    ("012.0.0.1", "10.0.0.1"),
    ("167772161", "10.0.0.1"),
    ("172.16.0.1", "172.16.0.1"),
    ("172.31.255.255", "172.31.255.255"),
    ("192.168.1.1", "192.168.1.1"),
    ("169.254.169.254", "169.254.169.254"),
    ("169.254.43518", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("100.64.0.1", "100.64.0.1"),
    ("100.127.255.254", "100.127.255.254"),
    ("224.0.0.1", "224.0.0.1"),
    ("239.255.255.250", "239.255.255.250"),
    ("240.0.0.1", "240.0.0.1"),
    ("255.255.255.255", "255.255.255.255"),
    ("192.0.2.1", "192.0.2.1"),
    ("198.51.100.7", "198.51.100.7"),
    ("203.0.113.9", "203.0.113.9"),
    ("198.18.0.1", "198.18.0.1"),
    ("198.19.255.1", "198.19.255.1"),
    ("192.0.0.8", "192.0.0.8"),
    ("192.88.99.1", "192.88.99.1"),
    ("[::ffff:10.0.0.1]", "::ffff:10.0.0.1"),
    ("[::ffff:a9fe:a9fe]", "::ffff:169.254.169.254"),
    ("[::10.0.0.1]", "::10.0.0.1"),
    ("[64:ff9b::a00:1]", "64:ff9b::a00:1"),
    ("[64:ff9b:1::1]", "64:ff9b:1::1"),
    ("[2002:a9fe:a9fe::1]", "2002:a9fe:a9fe::1"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
    ("[fec0::1]", "fec0::1"),
    ("[fc00::1]", "fc00::1"),
    ("[fd12:3456::1]", "fd12:3456::1"),
    ("[fe80::1]", "fe80::1"),
    ("[ff02::1]", "ff02::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("[100::1]", "100::1"),
    ("[2001:2::1]", "2001:2::1"),
]
MALFORMED_FORMS = [
    "1.2.3.4.5",
    "256.1.1.1",
    "0x100000000",
    "4294967296",
    "08.0.0.1",
    "%31%32%37.0.0.1",
    "127.0.0.1%2e",
    "[fe80::1%25eth0]",
    "\u0661\u0662\u0667.0.0.1",  # Arabic-Indic digits: refused by IDNA, never a name
    "exa\u00admple.com\u3002.",  # soft hyphen: each client reads it differently
]
URL_TRICKS = [
    "https://hooks.example.com@127.0.0.1/",
    "https://127.0.0.1\\@hooks.example.com/",
    "https://127.0.0.1\t/",
    "https:///nohost",
    "ftp://hooks.example.com/",
    "https://user:pw@hooks.example.com/",
    "gopher://127.0.0.1/",
    "file:///etc/passwd",
]


def fake_dns(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


DNS = fake_dns(
    {
        "hooks.example.com": ["93.184.215.14"],
        "example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "rebind.example.com": ["93.184.215.14", "127.0.0.1"],
        "mapped.example.com": ["::ffff:10.0.0.1"],
        "internal.example.com": ["10.1.2.3"],
        "metadata.example.com": ["169.254.169.254"],
        "nat64.example.com": ["64:ff9b::a9fe:a9fe"],
        "v6.example.com": ["2606:4700::1111"],
    }
)
NAME_FORMS = [
    "rebind.example.com",
    "mapped.example.com",
    "internal.example.com",
    "metadata.example.com",
    "nat64.example.com",
    "no-such-host.example.com",
    "INTERNAL.example.com",
    "\uff49\uff4e\uff54\uff45\uff52\uff4e\uff41\uff4c.example.com",
]  # fullwidth "internal"

ALL_REFUSED = [f for f, _ in LOOPBACK_FORMS] + [f for f, _ in PRIVATE_FORMS] + MALFORMED_FORMS + NAME_FORMS


def test_the_policy_is_tried_with_many_forms():
    # What the closing note reports: forms tried, every one refused (the tests below).
    assert len(ALL_REFUSED) + len(URL_TRICKS) >= 90
    assert len(set(ALL_REFUSED)) == len(ALL_REFUSED)


@pytest.mark.parametrize("form,address", LOOPBACK_FORMS + PRIVATE_FORMS)
async def test_non_public_forms_are_refused_for_their_address(form, address):
    url = f"https://{form}:8443/hook"
    with pytest.raises(TargetRefused) as refused:
        await check_url(url, allow_private=False, resolve=DNS)
    kind = deny_reason(ipaddress.ip_address(address))
    assert kind is not None and f"({kind})" in refused.value.reason, refused.value.reason
    if (form, address) in LOOPBACK_FORMS:
        assert "loopback" in kind
    # The host the client will connect to is this address — yarl's reading (aiohttp) ...
    target = parse_target(url, allow_private=True)
    assert target.address == ipaddress.ip_address(address)
    # ... and getaddrinfo's, for the numeric forms the C resolver accepts (aiohttp's resolver gets those).
    seen = yarl.URL(url).raw_host
    if ":" not in seen and not seen.endswith("."):
        infos = socket.getaddrinfo(seen, 80, type=socket.SOCK_STREAM)
        assert {i[4][0] for i in infos} == {address}


@pytest.mark.parametrize("form,address", LOOPBACK_FORMS)
def test_httpx_reads_loopback_forms_as_loopback_or_refuses_them(form, address):
    url = f"https://{form}:8443/hook"
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        with pytest.raises(TargetRefused):
            parse_target(url, allow_private=True, client="httpx")
        return
    assert parse_target(url, allow_private=True, client="httpx").address == ipaddress.ip_address(address)
    with pytest.raises(TargetRefused, match="loopback"):
        parse_target(url, allow_private=False, client="httpx")


@pytest.mark.parametrize("form", MALFORMED_FORMS)
async def test_malformed_hosts_are_refused_even_with_private_targets_allowed(form):
    with pytest.raises(TargetRefused):
        await check_url(f"https://{form}/hook", allow_private=True, resolve=DNS)


@pytest.mark.parametrize("url", URL_TRICKS)
def test_url_tricks_are_refused(url):
    with pytest.raises(TargetRefused):
        parse_target(url, allow_private=False)


@pytest.mark.parametrize("form", NAME_FORMS)
async def test_names_resolving_to_any_refused_address_are_refused_without_saying_where(form):
    with pytest.raises(TargetRefused) as refused:
        await check_url(f"https://{form}/hook", allow_private=False, resolve=DNS)
    # No resolved address in what the URL's author reads (a map of the internal network otherwise); the
    # operators' detail has it.
    for leaked in ("10.1.2.3", "127.0.0.1", "169.254", "10.0.0.1", "a9fe"):
        assert leaked not in refused.value.reason
    assert "does not resolve to public addresses only" in refused.value.reason


async def test_a_name_that_does_not_resolve_is_told_apart_only_by_type():
    with pytest.raises(DoesNotResolve) as missing:
        await resolve_checked("no-such-host.example.com", 443, False, DNS)
    with pytest.raises(TargetRefused) as private:
        await resolve_checked("internal.example.com", 443, False, DNS)
    assert not isinstance(private.value, DoesNotResolve)
    assert missing.value.reason.replace("no-such-host", "internal") == private.value.reason


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://hooks.example.com/x", ["93.184.215.14"]),
        (
            "https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002com/x",
            ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        ),
        ("https://v6.example.com/x", ["2606:4700::1111"]),
    ],
)
async def test_public_names_pass_and_resolve_to_what_is_connected(url, expected):
    target = await check_url(url, allow_private=False, resolve=DNS)
    assert [str(a) for a in await resolve_checked(target.host, target.port, False, DNS)] == expected


@pytest.mark.parametrize(
    "form",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "[2606:4700::1111]",
        "[64:ff9b::808:808]",
        "[2002:808:808::1]",
        "[::ffff:8.8.8.8]",
        "134744072",
    ],
)
async def test_public_addresses_pass(form):
    target = await check_url(f"https://{form}/hook", allow_private=False, resolve=DNS)
    assert target.address is not None and deny_reason(target.address) is None


async def test_private_targets_are_allowed_only_with_the_setting():
    for form, _ in LOOPBACK_FORMS:
        await check_url(f"http://{form}:8080/hook", allow_private=True, resolve=DNS)
    assert [str(a) for a in await resolve_checked("internal.example.com", 80, True, DNS)] == ["10.1.2.3"]
    with pytest.raises(TargetRefused, match="plain http"):
        await check_url("http://hooks.example.com/x", allow_private=False, resolve=DNS)


def test_url_length_is_capped():
    url = "https://hooks.example.com/" + "x" * 100
    parse_target(url, allow_private=False, max_url_length=len(url))
    with pytest.raises(TargetRefused, match="characters long"):
        parse_target(url, allow_private=False, max_url_length=len(url) - 1)


@pytest.mark.parametrize("form,address", LOOPBACK_FORMS + PRIVATE_FORMS)
def test_normaliser_agrees_with_yarl(form, address):
    # This module's own reading (UTS-46, numeric forms) and yarl's (what aiohttp connects to) are one address.
    mine = host_address(normalise_host(form))
    theirs = host_address(normalise_host(yarl.URL(f"https://{form}/").raw_host))
    assert mine == theirs == ipaddress.ip_address(address)


def test_numeric_ipv4_reading_matches_inet_aton():
    for text in [
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "127.0.1",
        "0",
        "0x0",
        "1.2.3",
        "10.258",
        "0xffffffff",
        "037777777777",
        "1.0x2.03.4",
    ]:
        assert str(parse_ipv4_numeric(text)) == socket.inet_ntoa(socket.inet_aton(text)), text
    assert parse_ipv4_numeric("example.com") is None and parse_ipv4_numeric("1.2.3.example") is None
    for bad in ["1.2.3.4.5", "256.1.1.1", "4294967296", "08", "0x1.0x100.1.1", "1..2"]:
        with pytest.raises(TargetRefused):
            parse_ipv4_numeric(bad)


# --- what a receiver asks us to wait ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,expected",
    [
        ("2", 2.0),
        ("0.5", 0.5),
        (" 3 ", 3.0),
        (1.5, 1.5),
        (7, 7.0),
        ("-4", 0.0),
        (-1, 0.0),
        ("NaN", None),
        ("nan", None),
        (float("nan"), None),
        ("abc", None),
        ("", None),
        (None, None),
        (True, None),
        ("1" * 100, None),
        ([1], None),
        ({"a": 1}, None),
    ],
)
def test_delays_are_parsed_safely(value, expected):
    assert parse_delay(value) == expected


@pytest.mark.parametrize("value", ["1e999", "inf", "Infinity", float("inf"), 1e308 * 10, "99999999999999999999"])
def test_huge_delays_are_huge_not_errors_and_capped_by_callers(value):
    delay = parse_delay(value)
    assert delay is not None and delay > 1e6
    assert RetryPolicy((1.0,)).delay_after(1, hinted_s=delay, hint_cap_s=300.0) <= 300.0


def test_retry_after_http_date():
    assert parse_delay("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 30) == 30.0
    assert parse_delay("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 + 30) == 0.0
