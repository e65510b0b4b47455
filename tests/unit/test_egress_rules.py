"""The egress guard's address rules: which addresses provider endpoints may reach, however they are spelled."""
from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver

from service.config import Settings
from service.egress import (
    EgressPolicy,
    EndpointBlocked,
    GuardedResolver,
    blocked_reason,
    parse_host_address,
    parse_ipv4_spelling,
    validate_endpoint,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation range: not routable on the internet
        ("2001:db8::1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        # IPv6 forms that carry an IPv4 address are judged by that address
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::", "cloud metadata"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address, reason):
    assert reason in (blocked_reason(ipaddress.ip_address(address)) or "")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "104.18.6.192", "2606:4700::6810:6c0", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
    ],
)
def test_numeric_ipv4_spellings_are_decoded(spelling, address):
    assert parse_ipv4_spelling(spelling) == ipaddress.ip_address(address)
    assert parse_host_address(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("name", ["api.openai.com", "1e100.net", "08.1.2.3", "256.1.1.1", "1.2.3.4.5", "0x", "", "4294967296"])
def test_names_and_impossible_numbers_are_not_addresses(name):
    assert parse_ipv4_spelling(name) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [("[::1]", "::1"), ("fe80::1%eth0", "fe80::1"), ("::ffff:a9fe:a9fe", "::ffff:169.254.169.254"), ("10.0.0.1.", "10.0.0.1")],
)
def test_host_spellings_of_literals(host, address):
    assert parse_host_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434/v1",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://127.1:8000/",
        "http://[::1]/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:8000/",
        "http://[::]/",
        "http://100.64.1.1/",
        "https://10.0.0.5/v1",
        "http://localhost:11434/",
        "http://localhost./",
        "http://LOCALHOST/",
        "http://ollama.localhost/",
    ],
)
def test_urls_with_blocked_literals_are_refused_without_resolving(url):
    with pytest.raises(EndpointBlocked) as raised:
        EgressPolicy([]).check_url(url)
    assert raised.value.code == "endpoint_blocked"
    assert "LLMP_EGRESS_ALLOW" in raised.value.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com/", "http or https"),
        ("http://user:secret@example.com/", "user name or password"),
        ("http://user@example.com/", "user name or password"),
        ("http:///nohost", "no host"),
    ],
)
def test_urls_of_other_schemes_or_with_user_info_are_refused(url, words):
    with pytest.raises(EndpointBlocked) as raised:
        EgressPolicy([]).check_url(url)
    assert words in raised.value.message
    assert "secret" not in raised.value.message


def test_public_urls_pass_the_url_check():
    assert EgressPolicy([]).check_url("https://api.openai.com/v1").host == "api.openai.com"


def test_allow_list_opens_cidrs_and_host_names():
    policy = EgressPolicy(["10.0.0.0/8", "ollama.internal", "127.0.0.1", "fd00::/8", "LOCALHOST."])
    policy.check_url("http://10.20.30.40:11434/v1")
    policy.check_url("http://127.0.0.1:8000/")
    policy.check_url("http://[::ffff:127.0.0.1]:8000/")  # the mapped form of an allowed IPv4 address
    policy.check_url("http://[fd00::5]/")
    policy.check_resolved("ollama.internal", ["192.168.7.7"])  # an allowed name may resolve anywhere
    policy.check_resolved("localhost", ["127.0.0.1", "::1"])
    with pytest.raises(EndpointBlocked):
        policy.check_url("http://169.254.169.254/")  # still not allowed
    with pytest.raises(EndpointBlocked):
        policy.check_resolved("other.internal", ["192.168.7.7"])


def test_mixed_answers_are_refused_at_save_time_and_filtered_at_connect_time():
    policy = EgressPolicy([])
    with pytest.raises(EndpointBlocked):
        policy.check_resolved("rebind.example", ["93.184.216.34", "127.0.0.1"])
    assert policy.allowed_addresses("rebind.example", ["93.184.216.34", "127.0.0.1"]) == ["93.184.216.34"]
    with pytest.raises(EndpointBlocked):
        policy.allowed_addresses("internal.example", ["10.0.0.1", "::1"])


class _FixedAnswers(AbstractResolver):
    """A DNS stand-in answering every name with fixed addresses (the guard is what is under test)."""

    def __init__(self, addresses):
        self.addresses = addresses

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": a, "port": port, "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                 "proto": 0, "flags": 0} for a in self.addresses]

    async def close(self):
        pass


async def test_guarded_resolver_hands_over_only_allowed_addresses():
    resolver = GuardedResolver(EgressPolicy([]), _FixedAnswers(["93.184.216.34", "169.254.169.254"]))
    answers = await resolver.resolve("evil.example", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34"]
    blocked = GuardedResolver(EgressPolicy([]), _FixedAnswers(["169.254.169.254"]))
    with pytest.raises(EndpointBlocked) as raised:
        await blocked.resolve("evil.example", 443)
    assert "cloud metadata" in raised.value.message


def _settings(allow: str = "") -> Settings:
    return Settings(_env_file=None, egress_allow=allow)


async def test_validate_endpoint_resolves_names():
    with pytest.raises(EndpointBlocked):
        await validate_endpoint("http://localhost:11434/", _settings())
    with pytest.raises(EndpointBlocked):
        await validate_endpoint("http://localhost./", _settings())
    await validate_endpoint("http://localhost:11434/", _settings("localhost"))
    await validate_endpoint("http://127.0.0.1:11434/", _settings("127.0.0.0/8"))


async def test_validate_endpoint_lets_unresolvable_names_through_for_the_live_check_to_report():
    await validate_endpoint("https://nonexistent.invalid/v1/", _settings())


async def test_validate_endpoint_refuses_literals_and_bad_urls():
    for url in ("http://[::ffff:169.254.169.254]/", "http://0x7f000001/", "ftp://example.com/", "http://a:b@example.com/"):
        with pytest.raises(EndpointBlocked):
            await validate_endpoint(url, _settings())
