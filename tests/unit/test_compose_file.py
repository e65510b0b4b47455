"""docker-compose.yml: valid against the Compose specification, and shaped the way operators rely on.

Docker does not run here, so the file is checked with `check-jsonschema` (the vendored Compose schema)
and its `${...}` interpolation is resolved the way Compose does before the environment is checked
against the service's own production start-up rules. The healthcheck commands are run for real against
the API, a worker and the scheduler's heartbeat, so a check that can never pass (or never fail) shows here.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from ruamel.yaml import YAML

from service.config import Settings
from tests.processes import ServiceProcess, settings_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("migrate", "api", "worker", "scheduler")
LONG_RUNNING = ("postgres", "redis", "api", "worker", "scheduler")
LLMP_SETTINGS = ("LLMP_ENV", "LLMP_DATABASE_URL", "LLMP_BROKER_URL", "LLMP_ENCRYPTION_KEYS", "LLMP_JWT_SECRET",
                 "LLMP_ALERT_WEBHOOK_URL", "LLMP_ALERT_WEBHOOK_SECRET")

PASSWORD = "pw0123456789abcdef"
KEYS = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
JWT = "jwt-" + "s" * 40
REQUIRED_ENV = {"POSTGRES_PASSWORD": PASSWORD, "LLMP_ENCRYPTION_KEYS": KEYS, "LLMP_JWT_SECRET": JWT}


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe", pure=True).load(COMPOSE.read_text())


class MissingVariable(Exception):
    pass


_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env: dict):
    """Compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        escaped, name, op, arg, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        present = name in env
        current = env.get(name, "")
        if op in (":-", ":?"):
            usable = bool(current)
        else:
            usable = present
        if op in (":-", "-"):
            return current if usable else arg
        if op in (":?", "?"):
            if not usable:
                raise MissingVariable(f"{name}: {arg}")
            return current
        return current

    return _VAR.sub(sub, value)


def _app_env(compose: dict, service: str, env: dict) -> dict:
    environment = compose["services"][service]["environment"]
    assert isinstance(environment, dict)
    return interpolate(environment, env)


def test_valid_against_the_compose_specification(tmp_path):
    exe = Path(sys.executable).parent / "check-jsonschema"
    assert exe.exists(), "check-jsonschema is part of the test extras"
    result = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, **REQUIRED_ENV})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_the_validator_does_reject_a_broken_file(tmp_path):
    """Proves the schema check above has teeth: a typo in a service key is refused."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    healthcheck:\n", "    healthchek:\n", 1))
    exe = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run([str(exe), "--builtin-schema", "vendor.compose-spec", str(broken)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "healthchek" in result.stdout + result.stderr


def test_six_services_and_named_volumes(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "scheduler"}
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    assert str(services["redis"]["image"]).startswith("redis:7")
    for name in ("postgres", "redis"):
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in compose["volumes"], f"{name} keeps its data in a named volume"
    assert services["postgres"]["volumes"][0].endswith(":/var/lib/postgresql/data")
    assert services["redis"]["volumes"][0].endswith(":/data")
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]


def test_redis_never_evicts_and_persists(compose):
    command = compose["services"]["redis"]["command"]
    words = command if isinstance(command, list) else command.split()
    assert words[0] == "redis-server"
    assert words[words.index("--maxmemory-policy") + 1] == "noeviction"
    assert words[words.index("--appendonly") + 1] == "yes"


def test_every_long_running_service_has_a_healthcheck_and_restarts(compose):
    services = compose["services"]
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
        assert services[name]["restart"] in ("always", "unless-stopped")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert "celery" in worker_check and "tasks.app" in worker_check and "inspect ping" in worker_check
    # The one-shot migration is not restarted and not health-checked (it exits when done).
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_commands_and_start_order(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["command"] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert services["worker"]["command"] == ["worker"]
    assert services["scheduler"]["command"] == ["beat"]
    ports = interpolate(services["api"]["ports"], {})
    assert ports == ["8080:8080"]

    def conditions(name):
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"postgres": "service_healthy"}
    for name in ("api", "worker", "scheduler"):
        deps = conditions(name)
        assert deps["migrate"] == "service_completed_successfully", name
        assert deps["redis"] == "service_healthy", name


def test_every_command_is_one_the_console_script_accepts(compose):
    from service.cli import build_parser

    parser = build_parser()
    for name in APP_SERVICES:
        args = parser.parse_args(compose["services"][name]["command"])  # exits (fails the test) if unknown
        assert args.command == compose["services"][name]["command"][0]
    serve = parser.parse_args(compose["services"]["api"]["command"])
    assert (serve.host, serve.port) == ("0.0.0.0", 8080)


def test_app_services_share_one_build_and_environment(compose):
    services = compose["services"]
    builds = [services[name]["build"] for name in APP_SERVICES]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert all(build == builds[0] for build in builds)
    context = builds[0]["context"] if isinstance(builds[0], dict) else builds[0]
    assert context == "."
    assert len(images) == 1, "one image tag, so the stack is built once"
    environments = [services[name]["environment"] for name in APP_SERVICES]
    assert all(environment == environments[0] for environment in environments)
    assert "x-llmp-env" in compose and compose["x-llmp-env"] == environments[0]


def test_every_llmp_setting_is_present_and_resolves(compose):
    env = _app_env(compose, "api", REQUIRED_ENV)
    assert set(LLMP_SETTINGS) <= set(env)
    assert env["LLMP_ENV"] == "production"
    assert env["LLMP_DATABASE_URL"] == f"postgres://llmp:{PASSWORD}@postgres:5432/llmp"
    assert env["LLMP_BROKER_URL"] == "redis://redis:6379/0"
    assert env["LLMP_ENCRYPTION_KEYS"] == KEYS
    assert env["LLMP_JWT_SECRET"] == JWT
    assert env["LLMP_ALERT_WEBHOOK_URL"] == "" and env["LLMP_ALERT_WEBHOOK_SECRET"] == ""
    with_alerts = _app_env(compose, "api", {**REQUIRED_ENV, "LLMP_ALERT_WEBHOOK_URL": "https://hooks.example/x",
                                            "LLMP_ALERT_WEBHOOK_SECRET": "hmac"})
    assert with_alerts["LLMP_ALERT_WEBHOOK_URL"] == "https://hooks.example/x"
    assert with_alerts["LLMP_ALERT_WEBHOOK_SECRET"] == "hmac"

    # The database URL names the same user, database and password the postgres service is created with.
    pg = interpolate(compose["services"]["postgres"]["environment"], REQUIRED_ENV)
    assert env["LLMP_DATABASE_URL"] == (f"postgres://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
                                        f"@postgres:5432/{pg['POSTGRES_DB']}")


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_required_secrets_must_be_set(compose, missing):
    """`docker compose up` stops with a message instead of starting on an empty secret."""
    for value in ({k: v for k, v in REQUIRED_ENV.items() if k != missing}, {**REQUIRED_ENV, missing: ""}):
        with pytest.raises(MissingVariable) as caught:
            _app_env(compose, "api", value)
        assert caught.value.args[0].startswith(missing + ": set ")


def test_the_environment_passes_the_production_start_up_check(compose, monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("LLMP_"):
            monkeypatch.delenv(name)
    for name, value in _app_env(compose, "worker", REQUIRED_ENV).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLMP_DATA_DIR", str(tmp_path))
    settings = Settings(_env_file=None)
    settings.validate_for_startup()  # raises ConfigurationError on dev secrets or the embedded broker
    assert settings.is_production
    assert settings.effective_redis_url == "redis://redis:6379/0"
    assert [k.decode() for k in settings.fernet_keys] == KEYS.split(",")
    assert settings.jwt_key == JWT
    assert not (tmp_path / "dev-secrets.json").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dockerfile_healthcheck() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK"))
    return json.loads(line[line.index("CMD") + 3:].strip())


def _python_argv(test: list[str], port: int) -> list[str]:
    """A healthcheck's `python -c ...` aimed at this test's port instead of the container's 8080."""
    assert test[0] == "python"
    return [sys.executable, *[a.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for a in test[1:]]]


def _serve(settings, tmp_path, name: str):
    port = _free_port()
    proc = ServiceProcess(["serve", "--host", "127.0.0.1", "--port", str(port)], settings_env(settings),
                          tmp_path / f"{name}.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.stop()
    raise AssertionError(f"the API did not start:\n{proc.output()[-3000:]}")


def _exit(argv: list[str], env: dict | None = None) -> int:
    return subprocess.run(argv, capture_output=True, timeout=60, env=env).returncode


def test_api_healthchecks_against_the_real_api(compose, redis_settings, tmp_path):
    liveness = _dockerfile_healthcheck()
    readiness = compose["services"]["api"]["healthcheck"]["test"]
    assert liveness[0] == "python" and "/healthz" in liveness[-1]
    assert readiness[0] == "CMD" and "/readyz" in readiness[-1]

    proc, port = _serve(redis_settings, tmp_path, "api")
    try:
        assert _exit(_python_argv(liveness, port)) == 0
        assert _exit(_python_argv(readiness[1:], port)) == 0
    finally:
        proc.stop()
    assert _exit(_python_argv(liveness, port)) != 0, "a stopped API is not healthy"
    assert _exit(_python_argv(readiness[1:], port)) != 0

    # Broker down: the API is alive (not restarted) but not ready (no traffic, compose reports unhealthy).
    no_broker = redis_settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{_free_port()}/0"})
    proc, port = _serve(no_broker, tmp_path, "api-no-broker")
    try:
        assert _exit(_python_argv(liveness, port)) == 0
        assert _exit(_python_argv(readiness[1:], port)) != 0
    finally:
        proc.stop()


def test_worker_healthcheck_pings_this_containers_worker(compose, redis_settings, worker_factory):
    kind, command = compose["services"]["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = interpolate(command, {})  # `$$HOSTNAME` reaches the container's shell as `$HOSTNAME`
    env = {**settings_env(redis_settings), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    worker = worker_factory(redis_settings, concurrency=2)
    try:
        here = {**env, "HOSTNAME": socket.gethostname()}  # Docker sets HOSTNAME to the container's hostname
        result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60, env=here)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "pong" in result.stdout
        # Another container's name gets no answer: the check is about this container's own worker.
        elsewhere = {**env, "HOSTNAME": "not-this-container"}
        quick = command.replace("--timeout 10", "--timeout 2")
        assert subprocess.run(["sh", "-c", quick], capture_output=True, timeout=60, env=elsewhere).returncode != 0
    finally:
        worker.stop()


async def test_scheduler_healthcheck_follows_the_scheduler_heartbeat(compose, settings):
    from datetime import datetime, timedelta, timezone

    from models.ops import Heartbeat
    from service.db import close_database, open_database

    test = compose["services"]["scheduler"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    argv, env = [sys.executable, *test[2:]], settings_env(settings)
    assert _exit(argv, env) != 0, "a scheduler never heard from is not healthy"
    await open_database(settings)
    try:
        await Heartbeat.create(component="scheduler", seen_at=datetime.now(timezone.utc), detail="beat")
        assert _exit(argv, env) == 0
        await Heartbeat.filter(component="scheduler").update(
            seen_at=datetime.now(timezone.utc) - timedelta(minutes=10))
        assert _exit(argv, env) != 0, "a scheduler silent for ten minutes is not healthy"
    finally:
        await close_database()


def test_image_runs_the_console_script_as_a_non_root_user():
    """The compose commands are subcommands because the image's entrypoint is the console script."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith((" ", "#"))]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in instructions
    assert 'ENTRYPOINT ["llm-providers"]' in instructions
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]' in instructions
    assert "EXPOSE 8080" in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in instructions) and "/healthz" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "the build context is a whitelist: no .env, data dir, venv or .git in the image"
