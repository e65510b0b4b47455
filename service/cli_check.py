"""`llm-providers check`: one live credential check from the shell.

The key comes from `LLMP_CHECK_API_KEY` or standard input, never from argv (argv is visible to every user
of the machine). Prints the check result as JSON; exit 0 when ok, 1 when the check failed, 2 for a usage
error (no key, a field the kind requires is missing).
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import Any

from pydantic import SecretStr

from service.checks import CheckResult, run_check
from service.egress import EgressClient, EndpointBlocked, validate_endpoint
from service.providers.catalog import KINDS, kind_spec
from service.providers.target import ProviderTarget

KEY_ENV = "LLMP_CHECK_API_KEY"


def add_parser(subparsers: Any) -> None:
    """Register the `check` subcommand on an argparse subparsers object (`set_defaults(func=run)`)."""
    parser = subparsers.add_parser(
        "check",
        help="run one live credential check against a provider",
        description=f"Run one live credential check. The API key is read from {KEY_ENV} or standard input.",
    )
    parser.add_argument("--kind", required=True, choices=KINDS)
    parser.add_argument("--model", required=True, help="the model (for Azure OpenAI: the deployment name)")
    parser.add_argument("--endpoint", help="required for azure_openai and openai_compatible")
    parser.add_argument("--api-version", dest="api_version", help="required for azure_openai (e.g. 2024-10-21 or v1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Any) -> int:
    """Run the check described by `args` and print its result; returns the process exit code."""
    missing = [f"--{name.replace('_', '-')}" for name in kind_spec(args.kind).required_fields
               if name in ("endpoint", "api_version") and not getattr(args, name, None)]
    if missing:
        print(f"error: kind {args.kind} needs {', '.join(missing)}", file=sys.stderr)
        return 2
    key = _read_key()
    if not key:
        print(f"error: no API key: set {KEY_ENV} or pass the key on standard input", file=sys.stderr)
        return 2
    target = ProviderTarget(
        kind=args.kind,
        model=args.model.strip(),
        api_key=SecretStr(key),
        endpoint=_normalize_endpoint(args.endpoint),
        api_version=(args.api_version or "").strip() or None,
    )
    result = asyncio.run(_check(target, settings))
    print(json.dumps(result.as_dict(), indent=2))
    return 0 if result.ok else 1


async def _check(target: ProviderTarget, settings: Any) -> CheckResult:
    if target.endpoint:
        try:
            await validate_endpoint(target.endpoint, settings)
        except EndpointBlocked as exc:
            return CheckResult.failure("endpoint_blocked", exc.message)
    async with EgressClient(settings, limit=4) as client:
        return await run_check(target, client, settings)


def _read_key() -> str:
    key = os.environ.get(KEY_ENV, "").strip()
    if key:
        return key
    if sys.stdin is None:
        return ""
    if sys.stdin.isatty():
        return getpass.getpass("API key: ").strip()  # typed without echo, never in argv or history
    return sys.stdin.readline().strip()


def _normalize_endpoint(endpoint: str | None) -> str | None:
    """The form ProviderTarget expects: stripped, ending in exactly one "/"."""
    if not endpoint or not endpoint.strip():
        return None
    return endpoint.strip().rstrip("/") + "/"


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m service.cli_check --kind ...`) until the main CLI wires the subcommand."""
    from service.config import Settings

    parser = argparse.ArgumentParser(prog="llm-providers")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args, Settings())


if __name__ == "__main__":
    sys.exit(main())
