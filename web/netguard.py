"""One guard for every address a customer gives us (webhook URLs, own-bucket endpoints).

The host is resolved here, every address it resolves to is checked, and the checked
addresses are returned: the caller connects to one of THEM (never resolving the name
again), so a DNS answer that changes between check and connect (rebinding) cannot
reach our own network. Numeric spellings (``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
``::ffff:127.0.0.1``, 6to4, NAT64, Teredo) are decoded to the address they mean first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp.abc

from web.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services, listed even where a broader rule already covers them.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.123",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd00:ec2::23",
    )
)
_NAT64 = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
RESOLVE_TIMEOUT_S = 5.0


class EndpointRefused(Unprocessable):
    """A customer-given address we will not connect to (a 422 naming the field only)."""


@dataclass(frozen=True, slots=True)
class CheckedEndpoint:
    """A URL whose host was resolved and checked: connect to ``addresses``, nothing else."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_forbidden(ip: IPAddress) -> bool:
    """True for loopback, private, link-local, multicast, unspecified, reserved, metadata."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
        if any(is_forbidden(v4) for v4 in _embedded_ipv4(ip)):
            return True
        if ip.is_site_local:
            return True
    return (
        ip in METADATA
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    )


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The address a C resolver reads in ``host`` (1 to 4 parts, decimal, octal or hex)."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        p = part.lower()
        try:
            if p.startswith("0x"):
                values.append(int(p[2:] or "0", 16))
            elif len(p) > 1 and p.startswith("0"):
                values.append(int(p, 8))
            elif p.isdecimal() and p.isascii():
                values.append(int(p, 10))
            else:
                return None
        except ValueError:
            return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for i, v in enumerate(head):
        number |= v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is spelled as one (any spelling), else None."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if "%" in bare:
        try:
            return ipaddress.IPv6Address(bare)
        except ValueError:
            return None
    return _inet_aton(bare.rstrip("."))


async def _resolve(host: str, port: int, timeout_s: float) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return []
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0])
        if addr not in seen:
            seen.append(addr)
    return seen


async def check_url(
    url: str,
    *,
    field: str,
    allow_private: bool,
    schemes: tuple[str, ...] = ("http", "https"),
    timeout_s: float = RESOLVE_TIMEOUT_S,
) -> CheckedEndpoint:
    """Resolve ``url``'s host and refuse it (EndpointRefused) unless every address is public.

    ``field`` names the input in the message. ``allow_private`` (the setting
    ``TALKTURO_ALLOW_PRIVATE_ENDPOINTS``) lifts the address check, not the resolving.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointRefused(f"{field} is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes or not parts.hostname:
        raise EndpointRefused(f"{field} must be an {'/'.join(schemes)} URL with a host name.")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused(f"{field} must not carry a user name or password.")
    host = parts.hostname
    port = port or (443 if scheme == "https" else 80)
    literal = literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = await _resolve(host, port, timeout_s)
        if not addresses:
            raise EndpointRefused(f"{field}: the host name {host!r} does not resolve.")
    if not allow_private:
        for raw in addresses:
            if _forbidden_text(raw):
                raise EndpointRefused(
                    f"{field} must reach a public internet address; this host is on a"
                    " private, local or reserved network."
                )
    return CheckedEndpoint(url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses))


class PinnedResolver(aiohttp.abc.AbstractResolver):
    """An aiohttp resolver that answers only the checked host, with the checked addresses."""

    def __init__(self, endpoint: CheckedEndpoint) -> None:
        self._endpoint = endpoint

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        """The checked addresses for the checked host; any other name is refused."""
        if host.strip("[]").lower() != self._endpoint.host.lower():
            raise OSError(f"{host!r} was not checked")
        out: list[aiohttp.abc.ResolveResult] = []
        for addr in self._endpoint.addresses:
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            out.append(
                {
                    "hostname": host,
                    "host": addr,
                    "port": port,
                    "family": fam,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return out

    async def close(self) -> None:
        """Nothing to release."""


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """An aiohttp resolver that checks every answer: for long-lived clients (own buckets).

    The addresses aiohttp connects to are the ones checked in the same call, so there is
    no window for rebinding; a refused host fails like an unreachable one (OSError).
    aiohttp does not ask a resolver about IP literals: check those with
    :func:`refuse_literal` when the client is made.
    """

    def __init__(self, *, allow_private: bool, timeout_s: float = RESOLVE_TIMEOUT_S) -> None:
        self._allow_private = allow_private
        self._timeout_s = timeout_s

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        """Resolve ``host`` and refuse it unless every address may be used."""
        name = host.strip("[]")
        literal = literal_address(name)
        addresses = [str(literal)] if literal else await _resolve(name, port, self._timeout_s)
        if not addresses:
            raise OSError(f"{host!r} does not resolve")
        if not self._allow_private and any(_forbidden_text(a) for a in addresses):
            raise OSError("the endpoint is not a public internet address")
        return [
            {
                "hostname": host,
                "host": addr,
                "port": port,
                "family": socket.AF_INET6 if ":" in addr else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for addr in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


def _forbidden_text(address: str) -> bool:
    return is_forbidden(ipaddress.ip_address(address.split("%", 1)[0]))


def refuse_literal(url: str, *, field: str, allow_private: bool) -> None:
    """EndpointRefused when ``url``'s host is spelled as a forbidden IP address (no DNS)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        raise EndpointRefused(f"{field} is not a valid URL.") from None
    literal = literal_address(host)
    if literal is not None and not allow_private and is_forbidden(literal):
        raise EndpointRefused(
            f"{field} must reach a public internet address; this host is on a"
            " private, local or reserved network."
        )


def pinned_url(endpoint: CheckedEndpoint, address: str, url: str | None = None) -> str:
    """``url`` (default: the endpoint's) with its host replaced by ``address``."""
    parts = urlsplit(url or endpoint.url)
    netloc_host = f"[{address}]" if ":" in address else address
    netloc = f"{netloc_host}:{endpoint.port}"
    return parts._replace(netloc=netloc).geturl()


def host_header(endpoint: CheckedEndpoint) -> str:
    """The Host header the URL's own name gives (port only when not the scheme's default)."""
    default = 443 if endpoint.scheme == "https" else 80
    name = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return name if endpoint.port == default else f"{name}:{endpoint.port}"
