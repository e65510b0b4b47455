"""The `llm-providers` command line."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from service import cli_check
from service.config import ConfigurationError, Settings
from tasks import cli as worker_cli


def _settings() -> Settings:
    return Settings()


def cmd_migrate(args, settings: Settings) -> int:
    from service.migrate import apply_migrations

    applied = asyncio.run(apply_migrations(settings))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_token(args, settings: Settings) -> int:
    from service.auth import issue_token

    try:
        print(issue_token(settings.jwt_key, role=args.role, org=args.org, sub=args.sub, ttl=args.ttl))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_rotate_keys(args, settings: Settings) -> int:
    from service.crypto import KeyVault
    from service.db import close_database, open_database
    from service.key_rotation import announce_rotation, rotate_all_keys

    async def rotate():
        await open_database(settings)
        try:
            return await rotate_all_keys(KeyVault(settings.fernet_keys))
        finally:
            await close_database()
            await announce_rotation(settings)

    counts = asyncio.run(rotate())
    print(json.dumps({"reencrypted": counts.reencrypted, "already_current": counts.already_current,
                      "failed": counts.failed}))
    return 1 if counts.failed else 0


def cmd_serve(args, settings: Settings) -> int:
    from service.serve import serve_api

    serve_api(settings, args.host, args.port)
    return 0


def cmd_run(args, settings: Settings) -> int:
    from service.run_all import run_everything

    return run_everything(settings, args.host, args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-providers", description="Bring-your-own LLM provider service.")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, text in (("run", cmd_run, "migrations, API, worker and scheduler in one process tree"),
                             ("serve", cmd_serve, "the API only")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8080)
        p.set_defaults(func=func)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    p = sub.add_parser("token", help="print a signed bearer token")
    p.add_argument("--role", required=True, choices=["owner", "admin", "member", "service", "ops"])
    p.add_argument("--org")
    p.add_argument("--sub")
    p.add_argument("--ttl", type=int, default=3600)
    p.set_defaults(func=cmd_token)

    sub.add_parser("rotate-keys", help="re-encrypt every stored key under the first encryption key") \
        .set_defaults(func=cmd_rotate_keys)

    cli_check.add_parser(sub)
    worker_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = _settings()
        return args.func(args, settings) or 0
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
