"""The egress address rules: which addresses provider endpoints may reach, and the save-time check.

Loopback, private, link-local, CGNAT, multicast, reserved, unspecified and cloud-metadata addresses (IPv4
and IPv6, IPv4-mapped and numeric spellings included) are refused unless `LLMP_EGRESS_ALLOW` names them.
`GuardedResolver` applies the rules to every address a connection is about to use.
"""
from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from service.errors import ServiceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance-metadata services: link-local or private already, except Azure's WireServer and Alibaba's,
# which sit on addresses that look public.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "168.63.129.16", "100.100.100.200")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPAT = ipaddress.ip_network("::/96")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_LOOPBACK_NAME = ipaddress.IPv4Address("127.0.0.1")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]+|[0-9]+)$", re.IGNORECASE)


class EndpointBlocked(ServiceError):
    """The egress guard refused an address before connecting."""

    code = "endpoint_blocked"


def parse_ipv4_spelling(host: str) -> ipaddress.IPv4Address | None:
    """Decode the legacy numeric IPv4 spellings resolvers accept (`2130706433`, `0x7f000001`, `0177.1`).

    Returns None when `host` is not such a spelling. Parts follow inet_aton: 1 to 4 parts, each decimal,
    0x-hex or 0-octal; the last part fills the remaining bytes.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        return None
    try:
        values = [_numeric_part(p) for p in parts]
    except ValueError:  # e.g. "08": not valid octal, so not an address either
        return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def _numeric_part(text: str) -> int:
    if text[:2].lower() == "0x":
        return int(text[2:], 16)
    if len(text) > 1 and text[0] == "0":
        return int(text, 8)
    return int(text)


def parse_host_address(host: str) -> IPAddress | None:
    """The IP address `host` spells (brackets, zone ids and numeric IPv4 forms included), or None for a name."""
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:
        text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return parse_ipv4_spelling(text)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, IPv4-compatible), if any."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why a provider endpoint may not reach `ip` ("a loopback address", ...), or None for a public address.

    IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that IPv4 address.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return blocked_reason(inner)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT address"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "a private address"
    if ip.is_reserved or ip.is_private or not ip.is_global:
        return "a reserved address"
    return None


class EgressPolicy:
    """The allow list (host names and CIDRs) plus the address rules above."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in allow:
            item = item.strip()
            if not item:
                continue
            try:
                self.networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                self.hosts.add(_normal_host(item))

    @classmethod
    def from_settings(cls, settings: Any) -> EgressPolicy:
        return cls(settings.egress_allow_list)

    def host_allowed(self, host: str) -> bool:
        return _normal_host(host) in self.hosts

    def check_address(self, ip: IPAddress, host: str) -> None:
        """Raise EndpointBlocked unless `ip` is public or inside an allowed network."""
        if any(ip in net for net in self.networks if net.version == ip.version):
            return
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            if any(ip.ipv4_mapped in net for net in self.networks if net.version == 4):
                return
        reason = blocked_reason(ip)
        if reason:
            raise EndpointBlocked(
                f"The endpoint host {host} points to {reason}, which provider endpoints may not reach. "
                "An operator can allow it with LLMP_EGRESS_ALLOW."
            )

    def check_resolved(self, host: str, addresses: Iterable[str]) -> None:
        """Raise EndpointBlocked if any address `host` resolved to is refused (a mixed answer is refused)."""
        if self.host_allowed(host):
            return
        for text in addresses:
            self.check_address(_address_of(text, host), host)

    def allowed_addresses(self, host: str, addresses: list[str]) -> list[str]:
        """The addresses of `host` that may be reached; EndpointBlocked when there are none.

        Used at connect time: dropping the refused answers of a mixed reply is as safe as refusing it,
        since only the remaining addresses are ever connected to.
        """
        if self.host_allowed(host):
            return addresses
        allowed: list[str] = []
        first_refusal: EndpointBlocked | None = None
        for text in addresses:
            try:
                self.check_address(_address_of(text, host), host)
            except EndpointBlocked as exc:
                first_refusal = first_refusal or exc
            else:
                allowed.append(text)
        if not allowed:
            raise first_refusal or EndpointBlocked(f"The endpoint host {host} resolved to no address.")
        return allowed

    def check_url(self, url: str | URL) -> URL:
        """Parse `url` and refuse what may never be fetched: other schemes, user-info, blocked IP literals."""
        try:
            parsed = url if isinstance(url, URL) else URL(url)
        except (ValueError, TypeError) as exc:
            raise EndpointBlocked("The endpoint is not a valid URL.") from exc
        if parsed.scheme not in ("http", "https"):
            raise EndpointBlocked("Provider endpoints must use http or https.")
        if parsed.raw_user is not None or parsed.raw_password is not None:
            raise EndpointBlocked("Provider endpoints may not carry a user name or password.")
        host = parsed.host
        if not host:
            raise EndpointBlocked("The endpoint has no host.")
        if self.host_allowed(host):
            return parsed
        ip = parse_host_address(host)
        if ip is None and _is_localhost_name(host):
            ip = _LOOPBACK_NAME  # RFC 6761: these names are loopback whatever DNS says
        if ip is not None:
            self.check_address(ip, host)
        return parsed


def _is_localhost_name(host: str) -> bool:
    name = _normal_host(host)
    return name == "localhost" or name.endswith(".localhost")


def _address_of(text: str, host: str) -> IPAddress:
    ip = parse_host_address(text)
    if ip is None:
        raise EndpointBlocked(f"The endpoint host {host} resolved to something that is not an address.")
    return ip


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


class GuardedResolver(AbstractResolver):
    """Resolves through the default resolver and hands the connector only addresses the policy allows."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = set(self._policy.allowed_addresses(host, [r["host"] for r in results]))
        return [r for r in results if r["host"] in allowed]

    async def close(self) -> None:
        await self._inner.close()


async def validate_endpoint(url: str, settings: Any) -> None:
    """Save-time check of an endpoint: raise EndpointBlocked when the URL or any address its host resolves to
    is refused. A name that does not resolve passes; the live check then reports it unreachable.
    """
    policy = EgressPolicy.from_settings(settings)
    parsed = policy.check_url(url)
    host = parsed.host or ""
    if policy.host_allowed(host) or parse_host_address(host) is not None or _is_localhost_name(host):
        return  # check_url has judged it
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parsed.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return
    policy.check_resolved(host, [info[4][0] for info in infos])
