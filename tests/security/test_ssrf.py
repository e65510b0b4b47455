"""SSRF: every way of pointing a provider endpoint at the machine, its network or a metadata service is
refused before a single packet is sent, both when the record is saved (422 naming `endpoint`) and when a
worker calls it (`endpoint_blocked`), with LLMP_EGRESS_ALLOW empty.

Proof that nothing was sent: every endpoint that can point at this machine points at a tripwire (listeners
on 127.0.0.1:PORT and [::1]:PORT that record every connection), and the tripwire must stay silent; a
control at the end shows the same endpoint does reach it once an operator allows the address. Endpoints
that could only leave the machine (169.254.169.254, fd00:ec2::254, 100.64.0.1) are first checked offline
against the egress rules, so a regression fails the test before anything is sent to them.

Records holding refused endpoints are saved through an API whose operator allowed everything (a list
tightened later), or written straight into the database where no API accepts them at all (other schemes,
user-info): the worker must refuse them on its own, at call time.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from models.providers import ProviderRecord
from service.egress import EgressPolicy, EndpointBlocked
from tests.conftest import good_key
from tests.processes import ServiceProcess, cli_path, settings_env
from tests.security.conftest import unique_org

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

OFF_MACHINE = ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "100.64.0.1")


def loopback_name_from_hosts_file() -> str:
    """A name (not localhost) that /etc/hosts maps to a loopback address: it resolves to a private address
    from the files database, without any DNS query leaving the machine."""
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = ipaddress.ip_address(fields[0])
        except ValueError:
            continue
        for name in fields[1:]:
            if address.is_loopback and "localhost" not in name and not name.startswith("ip6-"):
                return name
    raise AssertionError("/etc/hosts maps no name besides localhost to a loopback address")


def ssrf_endpoints(port: int) -> dict[str, str]:
    """Label -> endpoint. Those that can reach this machine carry the tripwire's port."""
    name = loopback_name_from_hosts_file()
    return {
        "ipv4 loopback": f"http://127.0.0.1:{port}/v1",
        "ipv4 loopback short": f"http://127.1:{port}/v1",
        "ipv6 loopback": f"http://[::1]:{port}/v1",
        "ipv4-mapped loopback": f"http://[::ffff:127.0.0.1]:{port}/v1",
        "metadata": "http://169.254.169.254/latest/meta-data",
        "metadata ipv6": "http://[fd00:ec2::254]/latest",
        "metadata ipv4-mapped": "http://[::ffff:169.254.169.254]/latest",
        "hex": f"http://0x7f000001:{port}/v1",
        "decimal": f"http://2130706433:{port}/v1",
        "octal": f"http://017700000001:{port}/v1",
        "carrier-grade nat": "http://100.64.0.1/v1",
        "unspecified": f"http://0.0.0.0:{port}/v1",
        "unspecified ipv6": f"http://[::]:{port}/v1",
        "localhost with dot": f"http://localhost.:{port}/v1",
        "localhost": f"http://localhost:{port}/v1",
        "subdomain of localhost": f"http://api.localhost:{port}/v1",
        "name resolving to loopback": f"http://{name}:{port}/v1",
    }


# Refused by the field rules themselves (no API saves them, whatever the allow list).
NOT_HTTP = {
    "user-info": "http://x@127.0.0.1:{port}/v1",
    "file": "file:///etc/passwd",
    "gopher": "gopher://127.0.0.1:{port}/_GET%20/",
    "ftp": "ftp://127.0.0.1:{port}/v1",
}


def compat(endpoint: str, key: str | None = None) -> dict:
    return {"kind": "openai_compatible", "name": f"ssrf {uuid.uuid4().hex[:8]}", "model": "fake-model",
            "api_key": key or good_key(), "endpoint": endpoint}


@pytest.fixture
async def ssrf(production_api, live_settings, worker_factory, tripwire):
    """A strict API and worker (allow list empty) and a permissive API sharing their database and queue."""
    strict = live_settings.model_copy(update={"egress_allow": ""})
    permissive = live_settings.model_copy(update={"egress_allow": "0.0.0.0/0,::/0"})
    worker = worker_factory(strict, concurrency=20)
    api = await production_api(strict)
    seeding_api = await production_api(permissive)
    return api, seeding_api, worker, tripwire


def assert_refused_offline(endpoint: str) -> None:
    """Before anything could send a packet off the machine: the egress rules themselves refuse it."""
    from service.validation import normalize_endpoint

    policy = EgressPolicy([])
    url = normalize_endpoint(endpoint)
    with pytest.raises(EndpointBlocked):
        policy.check_url(url + "chat/completions")


async def test_refused_at_save_time_naming_the_endpoint(ssrf):
    api, seeding_api, _, tripwire = ssrf
    org = unique_org("ssrf")
    endpoints = {**ssrf_endpoints(tripwire.port), **{k: v.format(port=tripwire.port) for k, v in NOT_HTTP.items()}}
    # (saved where everything is allowed, with an endpoint none of the cases repeats: a PATCH re-checks an
    # endpoint only when it changes)
    status, base, _ = await seeding_api.call("POST", "/llm-providers", org=org,
                                             json=compat(f"http://127.0.0.1:{tripwire.port}/base/v1"))
    assert status == 201, base
    for label, endpoint in endpoints.items():
        status, err, _ = await api.call("POST", "/llm-providers", org=org, json=compat(endpoint))
        assert status == 422, (label, status, err)
        assert list(err["error"]["fields"]) == ["endpoint"], (label, err)
        status, err, _ = await api.call("PATCH", f"/llm-providers/{base['id']}", org=org,
                                        json={"endpoint": endpoint, "api_key": good_key()})
        assert status == 422 and "endpoint" in err["error"]["fields"], (label, status, err)
        status, err, _ = await api.call("POST", "/llm-providers/discover-models", org=org,
                                        json={"kind": "openai_compatible", "api_key": good_key(),
                                              "endpoint": endpoint})
        assert status == 422, (label, status, err)
        assert (err["error"].get("fields", {}).get("endpoint")
                or err["error"]["result"]["error"]["code"] == "endpoint_blocked"), (label, err)
    status, listing, _ = await api.call("GET", "/llm-providers", org=org)
    assert [item["id"] for item in listing["items"]] == [base["id"]]
    assert tripwire.hits == []


async def test_refused_at_call_time_by_the_worker(ssrf):
    api, seeding_api, worker, tripwire = ssrf
    org = unique_org("ssrf")
    endpoints = ssrf_endpoints(tripwire.port)
    for label, endpoint in endpoints.items():
        if any(address in endpoint for address in OFF_MACHINE):
            assert_refused_offline(endpoint)
    records = {}
    for label, endpoint in endpoints.items():
        status, record, _ = await seeding_api.call("POST", "/llm-providers", org=org, json=compat(endpoint))
        assert status == 201, (label, record)
        records[label] = record
    # Where no API would save them: written into the database as a bypass or an old row would be.
    for label, template in NOT_HTTP.items():
        status, record, _ = await seeding_api.call("POST", "/llm-providers", org=org,
                                                   json=compat(f"http://127.0.0.1:{tripwire.port}/v1"))
        assert status == 201
        await ProviderRecord.filter(id=record["id"]).update(endpoint=template.format(port=tripwire.port))
        records[label] = record

    async def check(label, record):
        status, result, _ = await api.call("POST", f"/llm-providers/{record['id']}/test", org=org)
        assert status == 200 and result["ok"] is False, (label, status, result)
        assert result["error"]["code"] == "endpoint_blocked", (label, result)
        status, err, _ = await api.call("POST", f"/llm-providers/{record['id']}/activate", org=org)
        assert status == 422 and err["error"]["result"]["error"]["code"] == "endpoint_blocked", (label, err)
        status, err, _ = await api.call("GET", f"/llm-providers/{record['id']}/models", org=org)
        assert status == 422 and err["error"]["result"]["error"]["code"] == "endpoint_blocked", (label, err)

    await asyncio.gather(*(check(label, record) for label, record in records.items()))
    status, listing, _ = await api.call("GET", "/llm-providers", org=org)
    assert listing["active_provider_id"] is None
    assert tripwire.hits == [], tripwire.hits

    # Control: the same record does reach the tripwire once its address is allowed, so silence above
    # means refused, not misdirected.
    status, err, _ = await seeding_api.call("GET", f"/llm-providers/{records['ipv4 loopback']['id']}/models",
                                            org=org)
    assert status == 422
    assert tripwire.hits, "the allowed call should have reached the tripwire"


async def test_redirects_to_private_addresses_are_not_followed(production_api, live_settings, worker_factory,
                                                               tripwire, fakes):
    """A provider the operator allows (reached as `localhost` here, standing in for a public host) answers
    with a redirect to a private address: the answer is reported, the redirect never followed."""
    settings = live_settings.model_copy(update={"egress_allow": "localhost"})
    worker_factory(settings)
    api = await production_api(settings)
    org = unique_org("redirect")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{tripwire.port}/v1/chat/completions")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    redirector_port = runner.addresses[0][1]
    try:
        cases = {
            "to the tripwire": compat(f"http://localhost:{redirector_port}/v1"),
            "to the metadata service": compat(f"http://localhost:{fakes.port}/compat/v1",
                                              key=good_key("redirect")),
            "to itself": compat(f"http://localhost:{fakes.port}/compat/v1", key=good_key("redirectlocal")),
        }
        for label, body in cases.items():
            status, record, _ = await api.call("POST", "/llm-providers", org=org, json=body)
            assert status == 201, (label, record)
            status, result, _ = await api.call("POST", f"/llm-providers/{record['id']}/test", org=org)
            assert status == 200 and result["ok"] is False, (label, result)
            assert result["error"]["code"] == "unexpected_response", (label, result)
            assert result["error"]["provider_status"] in (302, 307), (label, result)
        assert len(fakes.requests(key=cases["to itself"]["api_key"])) == 1, "a redirect to itself was followed"
        assert tripwire.hits == []
    finally:
        await runner.cleanup()


# --- DNS rebinding --------------------------------------------------------------------------------------


class NamespacedProcess(ServiceProcess):
    """A service process in a mount namespace of its own where /etc/hosts is `hosts_file` (bind-mounted,
    so rewriting that file in place changes what the process resolves, as a rebinding DNS server would)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, hosts_file: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                                      str(hosts_file), cli_path(), *args],
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rewrite(path: Path, text: str) -> None:
    with open(path, "r+") as handle:  # same inode: the bind mounts see the change
        handle.seek(0)
        handle.write(text)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


async def test_dns_rebinding_is_refused_at_connect_time(live_settings, tripwire, tmp_path):
    """The endpoint's name resolves to a public address when it is saved, then to 127.0.0.1 when the worker
    calls it: the guard on the worker's connector checks the address it actually connects to.

    Each process resolves through its own /etc/hosts (a mount namespace with a file of this test bound over
    it): real resolution by the real resolver, no stub and no DNS query leaving the machine."""
    name = f"rebind-{uuid.uuid4().hex[:8]}.example"
    original = Path("/etc/hosts").read_text()
    hosts = tmp_path / "hosts"  # what the API resolves: public when the record is saved
    hosts.write_text(f"93.184.215.14 {name}\n{original}")
    # What the worker resolves: the rebound answer, from the start, so nothing of this test could ever
    # send a packet to the public address.
    worker_hosts = tmp_path / "worker-hosts"
    worker_hosts.write_text(f"127.0.0.1 {name}\n{original}")
    settings = live_settings.model_copy(update={"egress_allow": ""})
    env = settings_env(settings)
    port = _free_port()
    api = NamespacedProcess(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "api.log", hosts)
    worker = NamespacedProcess(["worker", "--concurrency", "4"], env, tmp_path / "worker.log", worker_hosts)
    try:
        worker.wait_for(" ready.", timeout=60)
        from service.auth import issue_token

        token = issue_token(settings.jwt_key, role="admin", org=unique_org("rebind"), ttl=600)
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(headers=headers) as session:
            for _ in range(200):
                try:
                    async with session.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            endpoint = f"http://{name}:{tripwire.port}/v1"
            async with session.post(base + "/llm-providers", json=compat(endpoint)) as resp:
                record = await resp.json()
                assert resp.status == 201, record  # public when saved

            # Rebound for the API too: its save-time check now refuses the same endpoint.
            _rewrite(hosts, f"127.0.0.1 {name}\n{original}")
            async with session.post(base + "/llm-providers", json=compat(endpoint)) as resp:
                refused = await resp.json()
                assert resp.status == 422 and "endpoint" in refused["error"]["fields"], refused

            async with session.post(f"{base}/llm-providers/{record['id']}/test") as resp:
                result = await resp.json()
            assert resp.status == 200 and result["ok"] is False, result
            assert result["error"]["code"] == "endpoint_blocked", result
            assert name in result["error"]["message"]
        assert tripwire.hits == []
    finally:
        api.stop()
        worker.stop()
