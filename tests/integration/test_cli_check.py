"""`llm-providers check` from the shell: JSON out, exit 0/1, the key from the environment or stdin, never shown."""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.cli_check import add_parser, run
from service.config import Settings
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake_url():
    """The fakes in their own process, as benchmarks run them (`python -m tests.fakes.server --port N`)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.server", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("the fake providers did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def cli(fake_url: str, args: list[str], *, key: str | None = None, stdin: str | None = None, allow: str = "127.0.0.1",
        tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMP_")}
    env.update({"PYTHONPATH": str(ROOT), "LLMP_EGRESS_ALLOW": allow, "LLMP_OPENAI_BASE_URL": f"{fake_url}/openai/v1",
                "LLMP_ANTHROPIC_BASE_URL": f"{fake_url}/anthropic", "LLMP_GEMINI_BASE_URL": f"{fake_url}/gemini",
                "LLMP_CHECK_TIMEOUT": "5", "LLMP_DATA_DIR": str(tmp_path / "data")})
    if key is not None:
        env["LLMP_CHECK_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "service.cli_check", *args], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


def test_a_passing_check_prints_the_result_and_exits_0(fake_url, tmp_path):
    done = cli(fake_url, ["--kind", "openai", "--model", "gpt-4o-mini"], key="fake-ok-" + secrets.token_hex(8),
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["model"] == "gpt-4o-mini" and set(result) == {"ok", "latency_ms", "model",
                                                                                          "checked_at"}


def test_the_key_can_come_on_standard_input(fake_url, tmp_path):
    done = cli(fake_url, ["--kind", "anthropic", "--model", "claude-haiku-4-5"], stdin="fake-ok-from-stdin\n",
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


def test_a_failing_check_exits_1_and_never_shows_the_key(fake_url, tmp_path):
    api_key = "sk-proj-" + secrets.token_hex(24)
    done = cli(fake_url, ["--kind", "openai", "--model", "gpt-4o"], key=api_key, tmp_path=tmp_path)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["ok"] is False and result["error"]["code"] == "invalid_api_key"
    assert result["error"]["provider_status"] == 401
    secret = api_key[8:]
    output = done.stdout + done.stderr
    assert not [secret[i : i + 4] for i in range(len(secret) - 3) if secret[i : i + 4] in output]


def test_endpoint_kinds_take_endpoint_and_api_version(fake_url, tmp_path):
    azure = cli(fake_url, ["--kind", "azure_openai", "--model", "missing-deployment", "--endpoint", f"{fake_url}/azure",
                           "--api-version", "2024-10-21"], key="fake-ok-azure", tmp_path=tmp_path)
    assert azure.returncode == 1 and json.loads(azure.stdout)["error"]["code"] == "model_not_found"
    compat = cli(fake_url, ["--kind", "openai_compatible", "--model", "llama3.2", "--endpoint", f"{fake_url}/ollama/v1"],
                 key="anything", tmp_path=tmp_path)
    assert compat.returncode == 0, compat.stdout


def test_a_private_endpoint_is_blocked_unless_allowed(fake_url, tmp_path):
    done = cli(fake_url, ["--kind", "openai_compatible", "--model", "llama3.2", "--endpoint", f"{fake_url}/compat/v1"],
               key="fake-ok-1", allow="", tmp_path=tmp_path)
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "endpoint_blocked"


def test_usage_errors_exit_2(fake_url, tmp_path):
    no_key = cli(fake_url, ["--kind", "openai", "--model", "gpt-4o"], tmp_path=tmp_path)
    assert no_key.returncode == 2 and "LLMP_CHECK_API_KEY" in no_key.stderr and no_key.stdout == ""
    no_endpoint = cli(fake_url, ["--kind", "azure_openai", "--model", "d"], key="fake-ok-1", tmp_path=tmp_path)
    assert no_endpoint.returncode == 2 and "--endpoint" in no_endpoint.stderr and "--api-version" in no_endpoint.stderr
    in_argv = cli(fake_url, ["--kind", "openai", "--model", "gpt-4o", "--api-key", "sk-x"], key="fake-ok-1",
                  tmp_path=tmp_path)
    assert in_argv.returncode == 2  # there is no way to pass the key in argv


def test_run_in_process_with_the_subcommand_registered(fake_url, tmp_path, monkeypatch, capsys):
    parser = argparse.ArgumentParser(prog="llm-providers")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", "--kind", "gemini", "--model", "gemini-2.5-flash"])
    assert args.func is run
    monkeypatch.setenv("LLMP_CHECK_API_KEY", "fake-quota-" + secrets.token_hex(8))
    settings = Settings(_env_file=None, egress_allow="127.0.0.1", gemini_base_url=f"{fake_url}/gemini",
                        data_dir=tmp_path / "data")
    assert args.func(args, settings) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["error"]["code"] == "quota_exceeded" and result["error"]["provider_request_id"] is None
