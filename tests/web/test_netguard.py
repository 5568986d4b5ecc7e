"""The guard on customer-given addresses: every spelling of a local address is refused."""

from __future__ import annotations

import ipaddress

import pytest

from web import netguard
from web.netguard import EndpointRefused, check_url, is_forbidden, literal_address

REFUSED_HOSTS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",  # 127.0.0.1 as one decimal number
    "0x7f000001",
    "0x7f.1",
    "0177.0.0.1",
    "0177.0.0.01",
    "017700000001",
    "localhost",
    "LOCALHOST.",
    "0.0.0.0",
    "0",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.169.254",  # cloud metadata
    "169.254.170.2",
    "100.100.100.200",
    "192.0.0.192",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[::ffff:10.0.0.1]",
    "[::127.0.0.1]",  # IPv4-compatible
    "[::a9fe:a9fe]",
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::1]",  # 6to4 of the metadata address
    "[64:ff9b::127.0.0.1]",  # NAT64
    "[64:ff9b::a9fe:a9fe]",
    "[fd00:ec2::254]",  # AWS metadata over IPv6
    "[fc00::1]",
    "[fe80::1]",
    "[fe80::1%25eth0]",
    "[fec0::1]",  # site-local
    "[ff02::1]",  # multicast
    "[2001:db8::1]",  # documentation
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
async def test_every_spelling_of_a_local_address_is_refused(host: str) -> None:
    url = f"https://{host}:9000/hook"
    with pytest.raises(EndpointRefused) as err:
        await check_url(url, field="url", allow_private=False)
    assert err.value.status_code == 422
    # The message names the rule, never the address or what listens there.
    assert "9000" not in err.value.detail
    assert host.strip("[]") not in err.value.detail


@pytest.mark.parametrize(
    ("spelling", "meaning"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("3232235777", "192.168.1.1"),
    ],
)
def test_numeric_spellings_are_read_as_the_address_they_mean(spelling: str, meaning: str) -> None:
    assert literal_address(spelling) == ipaddress.ip_address(meaning)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.com", "0x7g.1", "256.1.1.1.1", "a-b"])
def test_names_are_not_mistaken_for_numbers(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]
)
def test_public_addresses_pass(address: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(address))


async def test_a_public_literal_is_returned_as_the_address_to_connect_to() -> None:
    checked = await check_url("https://8.8.8.8/hook", field="url", allow_private=False)
    assert checked.addresses == ("8.8.8.8",)
    assert checked.port == 443
    assert netguard.pinned_url(checked, "8.8.8.8") == "https://8.8.8.8:443/hook"


async def test_a_name_is_resolved_once_and_its_addresses_returned() -> None:
    checked = await check_url("http://localhost:8123/x?y=1", field="url", allow_private=True)
    assert set(checked.addresses) <= {"127.0.0.1", "::1"}
    assert checked.addresses
    assert netguard.host_header(checked) == "localhost:8123"
    pinned = netguard.pinned_url(checked, "127.0.0.1")
    assert pinned == "http://127.0.0.1:8123/x?y=1"


async def test_the_setting_lifts_the_address_check_only() -> None:
    checked = await check_url("http://2130706433:80/", field="url", allow_private=True)
    assert checked.addresses == ("127.0.0.1",)
    with pytest.raises(EndpointRefused):
        await check_url("ftp://example.com/", field="url", allow_private=True)
    with pytest.raises(EndpointRefused):
        await check_url("http://user:pw@example.com/", field="url", allow_private=True)
    with pytest.raises(EndpointRefused):
        await check_url("http://example.com:99999/", field="url", allow_private=True)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(EndpointRefused, match="does not resolve"):
        await check_url("https://no-such-host.invalid/", field="url", allow_private=False)


async def test_the_pinned_resolver_answers_only_the_checked_name() -> None:
    checked = await check_url("http://localhost:1/", field="url", allow_private=True)
    resolver = netguard.PinnedResolver(checked)
    answers = await resolver.resolve("localhost", 1)
    assert [a["host"] for a in answers] == list(checked.addresses)
    with pytest.raises(OSError, match="not checked"):
        await resolver.resolve("example.com", 1)


async def test_the_guarded_resolver_checks_every_answer() -> None:
    guarded = netguard.GuardedResolver(allow_private=False)
    with pytest.raises(OSError, match="not a public internet address"):
        await guarded.resolve("localhost", 80)
    with pytest.raises(OSError, match="not a public internet address"):
        await guarded.resolve("0x7f.1", 80)
    with pytest.raises(OSError, match="does not resolve"):
        await guarded.resolve("no-such-host.invalid", 80)
    answers = await guarded.resolve("8.8.8.8", 443)
    assert [a["host"] for a in answers] == ["8.8.8.8"]
    lifted = netguard.GuardedResolver(allow_private=True)
    assert {a["host"] for a in await lifted.resolve("localhost", 80)} <= {"127.0.0.1", "::1"}


def test_literal_addresses_are_refused_without_dns() -> None:
    with pytest.raises(EndpointRefused):
        netguard.refuse_literal(
            "http://[::ffff:10.0.0.1]:9000", field="endpoint_url", allow_private=False
        )
    netguard.refuse_literal(
        "http://[::ffff:10.0.0.1]:9000", field="endpoint_url", allow_private=True
    )
    netguard.refuse_literal("https://s3.example.com", field="endpoint_url", allow_private=False)
    netguard.refuse_literal("https://8.8.8.8", field="endpoint_url", allow_private=False)
