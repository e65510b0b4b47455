"""Live checks when the transport fails, when the egress guard must refuse, and with keys that providers echo."""
from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import socket
import time

import pytest
from pydantic import SecretStr

from service.checks import run_check
from service.config import Settings
from service.egress import EgressClient, blocked_reason
from service.providers.target import ProviderTarget
from tests.fakes import start_fake_providers
from tests.fakes.tls import self_signed_server_context
from tests.processes import free_port


@pytest.fixture
async def fakes():
    running = await start_fake_providers()
    yield running
    await running.close()


def settings_for(fakes, allow: str = "127.0.0.1", **overrides) -> Settings:
    return Settings(_env_file=None, egress_allow=allow, check_timeout=overrides.pop("check_timeout", 5.0),
                    **{**fakes.native_settings(), **overrides})


async def check(settings: Settings, kind: str, api_key: str, *, model: str = "gpt-4o", endpoint: str | None = None,
                api_version: str | None = None):
    if kind == "azure_openai":
        api_version = api_version or "2024-10-21"
    target = ProviderTarget(kind=kind, model=model, api_key=SecretStr(api_key), endpoint=endpoint, api_version=api_version)
    async with EgressClient(settings) as client:
        return await run_check(target, client, settings)


def endpoint_of(fakes, kind: str) -> str | None:
    return fakes.base_url(kind) if kind in ("azure_openai", "openai_compatible") else None


def key(behaviour: str) -> str:
    return f"fake-{behaviour}-{secrets.token_hex(12)}"


# --- transport -------------------------------------------------------------------------------------


async def test_a_refused_connection_is_unreachable(fakes):
    settings = settings_for(fakes, openai_base_url=f"http://127.0.0.1:{free_port()}/v1")
    result = await check(settings, "openai", key("ok"))
    assert result.error.code == "unreachable" and result.error.provider_status is None
    assert "connection refused" in result.error.message


async def test_a_name_that_does_not_resolve_is_unreachable(fakes):
    result = await check(settings_for(fakes), "openai_compatible", key("ok"), endpoint="https://nonexistent.invalid/v1/")
    assert result.error.code == "unreachable"
    assert "nonexistent.invalid" in result.error.message


async def test_tls_to_a_plain_http_server_is_tls_error(fakes):
    endpoint = fakes.base_url("compat").replace("http://", "https://")
    result = await check(settings_for(fakes), "openai_compatible", key("ok"), endpoint=endpoint)
    assert result.error.code == "tls_error"
    assert fakes.log == []


async def test_an_untrusted_certificate_is_tls_error(tmp_path):
    tls_fakes = await start_fake_providers(ssl_context=self_signed_server_context(tmp_path))
    try:
        assert tls_fakes.root.startswith("https://")
        result = await check(settings_for(tls_fakes), "anthropic", key("ok"), model="claude-haiku-4-5")
        assert result.error.code == "tls_error"
        assert tls_fakes.log == []  # the handshake failed: no HTTP request was ever made
    finally:
        await tls_fakes.close()


async def test_a_hanging_provider_times_out_within_the_budget(fakes):
    settings = settings_for(fakes, check_timeout=1.5)
    started = time.monotonic()
    result = await check(settings, "gemini", key("hang"), model="gemini-2.5-flash")
    took = time.monotonic() - started
    assert result.error.code == "timeout"
    assert 1.4 <= took < 1.8


@pytest.mark.parametrize("behaviour", ["html", "huge", "hugechunked"])
@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "azure_openai", "openai_compatible"])
async def test_answers_that_are_not_the_api_are_unexpected_response(fakes, kind, behaviour):
    result = await check(settings_for(fakes), kind, key(behaviour), endpoint=endpoint_of(fakes, kind))
    assert result.error.code == "unexpected_response"


@pytest.mark.parametrize("behaviour", ["redirect", "redirectlocal"])
async def test_redirects_are_never_followed(fakes, behaviour):
    result = await check(settings_for(fakes), "openai", key(behaviour))
    assert result.error.code == "unexpected_response"
    assert result.error.provider_status in (302, 307)
    assert len(fakes.log) == 1  # the redirect target was never asked


# --- the egress guard ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "azure_openai", "openai_compatible"])
async def test_a_private_address_is_blocked_before_any_connection(fakes, kind):
    result = await check(settings_for(fakes, allow=""), kind, key("ok"), endpoint=endpoint_of(fakes, kind))
    assert result.error.code == "endpoint_blocked"
    assert "loopback" in result.error.message and "LLMP_EGRESS_ALLOW" in result.error.message
    assert fakes.log == []


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost.", "2130706433", "0x7f000001", "017700000001", "127.1", "[::ffff:127.0.0.1]", "[::1]"],
)
async def test_every_spelling_of_loopback_is_blocked(fakes, host):
    endpoint = f"http://{host}:{fakes.port}/compat/v1/"
    result = await check(settings_for(fakes, allow=""), "openai_compatible", key("ok"), endpoint=endpoint)
    assert result.error.code == "endpoint_blocked"
    assert fakes.log == []


async def test_a_name_that_resolves_to_a_private_address_is_blocked_at_connect_time(fakes):
    name = socket.gethostname()  # a real name whose DNS answer is this machine (loopback or a private address)
    answer = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)[0][4][0]
    assert blocked_reason(ipaddress.ip_address(answer)) is not None, f"{name} resolves to public {answer}"
    result = await check(settings_for(fakes, allow=""), "openai_compatible", key("ok"),
                         endpoint=f"http://{name}:{fakes.port}/compat/v1/")
    assert result.error.code == "endpoint_blocked"
    assert fakes.log == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/", "http://[fd00:ec2::254]/", "http://100.100.100.200/",
                                 "http://[::ffff:169.254.169.254]/"])
async def test_cloud_metadata_endpoints_are_blocked(fakes, url):
    result = await check(settings_for(fakes, allow=""), "openai_compatible", key("ok"), endpoint=url)
    assert result.error.code == "endpoint_blocked"
    assert "cloud metadata" in result.error.message


async def test_an_allowed_cidr_opens_loopback_for_operators(fakes):
    endpoint = f"http://localhost:{fakes.port}/ollama/v1/"
    result = await check(settings_for(fakes, allow="127.0.0.0/8"), "openai_compatible", "ollama", model="llama3.2",
                         endpoint=endpoint)
    assert result.ok


async def test_a_public_server_redirecting_to_a_private_one_is_not_followed(fakes):
    # The fake plays the "public" server (allowed); its 302 points at the metadata address.
    result = await check(settings_for(fakes), "anthropic", key("redirect"), model="claude-haiku-4-5")
    assert result.error.code == "unexpected_response" and result.error.provider_status == 302
    assert len(fakes.log) == 1


async def test_userinfo_and_other_schemes_are_refused(fakes):
    for endpoint in (f"http://user:pw@127.0.0.1:{fakes.port}/compat/v1/", "ftp://example.com/v1/"):
        result = await check(settings_for(fakes), "openai_compatible", key("ok"), endpoint=endpoint)
        assert result.error.code == "endpoint_blocked"
    assert fakes.log == []


# --- the key never leaks ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "azure_openai", "openai_compatible"])
@pytest.mark.parametrize("behaviour", ["echo", "wrong", "denied", "badrequest"])
async def test_the_key_never_appears_in_results_or_logs(fakes, caplog, kind, behaviour):
    caplog.set_level(logging.DEBUG)
    secret_part = secrets.token_hex(20)
    api_key = f"sk-proj-{secret_part}" if behaviour == "wrong" else f"fake-{behaviour}-{secret_part}"
    result = await check(settings_for(fakes), kind, api_key, endpoint=endpoint_of(fakes, kind))
    assert not result.ok
    shown = json.dumps(result.as_dict()) + repr(result) + str(result)
    pieces = [secret_part[i : i + 4] for i in range(len(secret_part) - 3)]
    assert not [p for p in pieces if p in shown]
    assert not [p for p in pieces if p in caplog.text]
    assert "****" not in shown
    if behaviour == "echo":
        assert fakes.log and api_key in json.dumps(fakes.log[0]["headers"])  # it was sent, and echoed back
