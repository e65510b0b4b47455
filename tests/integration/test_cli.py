"""The installed `llm-providers` console script, run as a user runs it: a subprocess, settings from `LLMP_*`
variables, started from an unrelated working directory (which must stay untouched), over PostgreSQL and SQLite.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
import uuid
from pathlib import Path

import asyncpg
import jwt
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

import models.migrations
from models.providers import ProviderRecord
from service.auth import InvalidToken, Principal, verify_token
from service.crypto import KeyVault
from service.db import close_database, open_database
from service.errors import CredentialsUnavailable
from tests.conftest import JWT_SECRET, REDIS_URL, run_cli
from tests.dbs import PG_ADMIN_DSN, PG_URL_TEMPLATE
from tests.processes import free_port

SHIPPED_MIGRATIONS = sorted(
    (p.name for p in (Path(models.migrations.__file__).parent / "models").glob("*.py") if p.name[0].isdigit()),
    key=lambda name: int(name.split("_", 1)[0]),
)


@pytest.fixture(autouse=True)
def _no_inherited_llmp_settings(monkeypatch):
    """Only what each test passes reaches the command: nothing from the developer's or CI's shell."""
    for name in list(os.environ):
        if name.startswith("LLMP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """An unrelated, empty working directory for every command."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def base_env(data_dir) -> dict:
    return {"LLMP_DATA_DIR": str(data_dir), "LLMP_JWT_SECRET": JWT_SECRET,
            "LLMP_ENCRYPTION_KEYS": Fernet.generate_key().decode()}


def assert_untouched(workdir: Path) -> None:
    assert sorted(p.name for p in workdir.iterdir()) == [], "the command wrote into the working directory"


# --- migrate --------------------------------------------------------------------------------------------

@pytest.fixture
async def empty_database_url(backend, tmp_path):
    """A database nobody has migrated yet."""
    if backend == "sqlite":
        yield f"sqlite://{tmp_path / 'brand-new.sqlite3'}"
        return
    name = f"llmp_empty_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield PG_URL_TEMPLATE.format(db=name)
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def test_migrate_applies_every_migration_once(empty_database_url, base_env, workdir, make_settings):
    env = {**base_env, "LLMP_DATABASE_URL": empty_database_url}
    first = run_cli("migrate", env=env, cwd=workdir)
    assert first.returncode == 0, first.stderr
    match = re.fullmatch(r"applied (\d+) migration\(s\): (.+)", first.stdout.strip())
    assert match, first.stdout
    assert int(match.group(1)) == len(SHIPPED_MIGRATIONS) >= 1
    assert match.group(2).split(", ") == SHIPPED_MIGRATIONS

    second = run_cli("migrate", env=env, cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "applied 0 migration(s)"
    assert_untouched(workdir)

    # The schema is really there: the service can store and read a record.
    await open_database(make_settings(database_url=empty_database_url))
    try:
        assert await ProviderRecord.all().count() == 0
        await ProviderRecord.create(id=uuid.uuid4(), org="acme", kind="openai", name="n", model="m",
                                    key_ciphertext="x", key_last4="abcd")
        assert await ProviderRecord.filter(org="acme").count() == 1
    finally:
        await close_database()

    # An existing row survives a rerun (nothing is recreated).
    assert run_cli("migrate", env=env, cwd=workdir).stdout.strip() == "applied 0 migration(s)"


def test_migrate_without_a_database_url_uses_the_data_dir(base_env, data_dir, workdir):
    result = run_cli("migrate", env=base_env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    database = data_dir / "llm-providers.sqlite3"
    assert database.is_file()
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"provider_records", "active_providers"} <= tables
    assert_untouched(workdir)
    # A second run from yet another directory finds the same database.
    other = workdir.parent / "other"
    other.mkdir()
    assert run_cli("migrate", env=base_env, cwd=other).stdout.strip() == "applied 0 migration(s)"
    assert_untouched(other)


def test_migrate_creates_the_folder_of_a_sqlite_database(base_env, tmp_path, workdir):
    database = tmp_path / "not" / "yet" / "there.sqlite3"
    result = run_cli("migrate", env={**base_env, "LLMP_DATABASE_URL": f"sqlite://{database}"}, cwd=workdir,
                     timeout=30)
    assert result.returncode == 0, result.stderr
    assert database.is_file()


# --- token ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role, org", [("owner", "acme"), ("admin", "acme"), ("member", "acme"),
                                       ("service", None), ("ops", None)])
def test_token_prints_a_jwt_the_api_accepts(base_env, workdir, role, org):
    before = int(time.time())
    result = run_cli("token", "--role", role, *(["--org", org] if org else []), env=base_env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout.count("\n") == 1 and token.count(".") == 2, "exactly one token on stdout"

    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims["role"] == role
    assert claims.get("org") == org
    assert isinstance(claims["sub"], str) and claims["sub"]
    assert before + 3600 <= claims["exp"] <= int(time.time()) + 3600  # the default: one hour
    assert verify_token(JWT_SECRET, token) == Principal(sub=claims["sub"], role=role, org=org)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-" + "y" * 32, algorithms=["HS256"])
    assert JWT_SECRET not in result.stdout + result.stderr
    assert_untouched(workdir)


def test_token_subject_and_ttl(base_env, workdir):
    result = run_cli("token", "--role", "admin", "--org", "acme", "--sub", "alice@acme.example", "--ttl", "90",
                     env=base_env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice@acme.example"
    assert 0 < claims["exp"] - time.time() <= 90


@pytest.mark.parametrize("ttl", ["0", "-300"])
def test_zero_or_negative_ttl_gives_an_already_expired_token(base_env, workdir, ttl):
    result = run_cli("token", "--role", "member", "--org", "acme", "--ttl", ttl, env=base_env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(JWT_SECRET, token)
    # Otherwise a well-formed, correctly signed token: only its expiry is in the past.
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["role"] == "member" and claims["org"] == "acme"
    assert claims["exp"] <= time.time() + int(ttl) + 1


@pytest.mark.parametrize("args, reason", [
    (["--role", "service", "--org", "acme"], "role service takes no org"),
    (["--role", "ops", "--org", "acme"], "role ops takes no org"),
    (["--role", "member"], "role member needs an org"),
    (["--role", "owner"], "role owner needs an org"),
    (["--role", "admin", "--org", ""], "role admin needs an org"),
])
def test_token_refuses_a_role_org_mismatch(base_env, workdir, args, reason):
    result = run_cli("token", *args, env=base_env, cwd=workdir)
    assert result.returncode != 0
    assert result.stdout == "", "no token is printed"
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_token_refuses_an_unknown_role(base_env, workdir):
    result = run_cli("token", "--role", "root", env=base_env, cwd=workdir)
    assert result.returncode != 0 and result.stdout == ""
    assert "root" in result.stderr and "invalid choice" in result.stderr


def test_development_token_is_signed_with_the_generated_secret_in_the_data_dir(data_dir, workdir, tmp_path):
    env = {"LLMP_DATA_DIR": str(data_dir)}
    first = run_cli("token", "--role", "ops", env=env, cwd=workdir)
    assert first.returncode == 0, first.stderr
    secrets_file = data_dir / "dev-secrets.json"
    secret = json.loads(secrets_file.read_text())["jwt_secret"]
    assert verify_token(secret, first.stdout.strip()).role == "ops"
    assert secret not in first.stdout + first.stderr
    assert secrets_file.stat().st_mode & 0o077 == 0, "dev secrets are readable by their owner only"
    # Another invocation from another directory signs with the same secret.
    other = tmp_path / "other"
    other.mkdir()
    second = run_cli("token", "--role", "admin", "--org", "acme", env=env, cwd=other)
    assert verify_token(secret, second.stdout.strip()) == Principal(sub="admin@acme", role="admin", org="acme")
    assert_untouched(workdir)
    assert_untouched(other)


# --- production refuses development secrets --------------------------------------------------------------

def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


KEY = Fernet.generate_key().decode()


@pytest.mark.parametrize("given, missing", [
    ({"LLMP_BROKER_URL": REDIS_URL}, ["LLMP_ENCRYPTION_KEYS", "LLMP_JWT_SECRET"]),
    ({"LLMP_BROKER_URL": REDIS_URL, "LLMP_ENCRYPTION_KEYS": KEY}, ["LLMP_JWT_SECRET"]),
    ({"LLMP_BROKER_URL": REDIS_URL, "LLMP_JWT_SECRET": JWT_SECRET}, ["LLMP_ENCRYPTION_KEYS"]),
    ({"LLMP_ENCRYPTION_KEYS": KEY, "LLMP_JWT_SECRET": JWT_SECRET}, ["LLMP_BROKER_URL"]),
    ({"LLMP_BROKER_URL": REDIS_URL, "LLMP_ENCRYPTION_KEYS": " ", "LLMP_JWT_SECRET": ""},
     ["LLMP_ENCRYPTION_KEYS", "LLMP_JWT_SECRET"]),
], ids=["no-secrets", "no-jwt-secret", "no-encryption-keys", "embedded-broker", "blank-secrets"])
def test_production_serve_refuses_to_start_on_development_defaults(data_dir, workdir, given, missing):
    # A developer ran the service here before: generated secrets already sit in the data dir.
    dev = run_cli("token", "--role", "ops", env={"LLMP_DATA_DIR": str(data_dir)}, cwd=workdir)
    assert dev.returncode == 0 and (data_dir / "dev-secrets.json").exists()
    dev_secrets = json.loads((data_dir / "dev-secrets.json").read_text())

    port = free_port()
    env = {"LLMP_ENV": "production", "LLMP_DATA_DIR": str(data_dir), **given}
    # Were it to start, the timeout kills it and the test fails: no server is left running.
    result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), env=env, cwd=workdir, timeout=60)
    assert result.returncode != 0
    assert "production refuses to start" in result.stderr
    for name in missing:
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert not _listening(port)
    for secret in (*dev_secrets.values(), KEY, JWT_SECRET):
        assert secret not in result.stdout + result.stderr
    assert_untouched(workdir)


def test_production_commands_never_generate_secrets(data_dir, workdir):
    env = {"LLMP_ENV": "production", "LLMP_DATA_DIR": str(data_dir), "LLMP_BROKER_URL": REDIS_URL}
    token = run_cli("token", "--role", "ops", env=env, cwd=workdir)
    assert token.returncode != 0 and token.stdout == ""
    assert "production needs LLMP_ENCRYPTION_KEYS and LLMP_JWT_SECRET" in token.stderr
    assert not (data_dir / "dev-secrets.json").exists()


# --- rotate-keys ----------------------------------------------------------------------------------------

@pytest.fixture
async def db(settings):
    """The test's own connection to the database the command works on."""
    await open_database(settings)
    yield
    await close_database()


async def _store(vault: KeyVault, org: str, count: int, prefix: str) -> dict[str, tuple[str, str]]:
    """Records as the service stores them; returns {id: (org, plaintext key)}."""
    rows, plain = [], {}
    for i in range(count):
        rid = uuid.uuid4()
        api_key = f"sk-{prefix}-{uuid.uuid4().hex}"
        rows.append(ProviderRecord(id=rid, org=org, kind="openai", name=f"{prefix} {i}", model="gpt-4.1-mini",
                                   key_ciphertext=vault.encrypt(org, str(rid), SecretStr(api_key)),
                                   key_last4=api_key[-4:]))
        plain[str(rid)] = (org, api_key)
    await ProviderRecord.bulk_create(rows)
    return plain


async def _ciphertexts() -> dict[str, str]:
    return {str(r["id"]): r["key_ciphertext"] for r in await ProviderRecord.all().values("id", "key_ciphertext")}


def _counts(result) -> dict:
    assert result.stdout.count("\n") == 1, result.stdout
    return json.loads(result.stdout)


def _assert_no_secrets(result, *secrets: str) -> None:
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output


async def test_rotate_keys_reencrypts_everything_and_is_idempotent(db, database_url, encryption_key, data_dir,
                                                                   workdir):
    key_a = encryption_key  # what `settings` (and so the records below) were written with
    key_b = Fernet.generate_key().decode()
    vault_a, vault_b = KeyVault([key_a.encode()]), KeyVault([key_b.encode()])
    # More records than one batch, in two orgs; a few were already written under B (a resumed rotation).
    plain = await _store(vault_a, "acme", 230, "a")
    plain |= await _store(vault_a, "globex", 20, "g")
    plain |= await _store(vault_b, "acme", 5, "b")
    last4_before = {str(r["id"]): r["key_last4"] for r in await ProviderRecord.all().values("id", "key_last4")}
    env = {"LLMP_DATA_DIR": str(data_dir), "LLMP_JWT_SECRET": JWT_SECRET, "LLMP_DATABASE_URL": database_url,
           "LLMP_ENCRYPTION_KEYS": f"{key_b},{key_a}"}
    secrets = (key_a, key_b, JWT_SECRET, *(k for _, k in plain.values()))

    first = run_cli("rotate-keys", env=env, cwd=workdir, timeout=120)
    assert first.returncode == 0, first.stderr
    assert _counts(first) == {"reencrypted": 250, "already_current": 5, "failed": 0}
    _assert_no_secrets(first, *secrets)

    after_first = await _ciphertexts()
    second = run_cli("rotate-keys", env=env, cwd=workdir, timeout=120)
    assert second.returncode == 0, second.stderr
    assert _counts(second) == {"reencrypted": 0, "already_current": 255, "failed": 0}
    _assert_no_secrets(second, *secrets)
    assert await _ciphertexts() == after_first, "a second run rewrites nothing"

    # The old key can now be dropped: B alone decrypts every record, to the same key, still bound to its row.
    stored = await _ciphertexts()
    assert set(stored) == set(plain)
    for rid, (org, api_key) in plain.items():
        assert vault_b.decrypt(org, rid, stored[rid]).get_secret_value() == api_key
        with pytest.raises(CredentialsUnavailable):
            vault_a.decrypt(org, rid, stored[rid])
    assert {str(r["id"]): r["key_last4"] for r in await ProviderRecord.all().values("id", "key_last4")} \
        == last4_before

    only_b = run_cli("rotate-keys", env={**env, "LLMP_ENCRYPTION_KEYS": key_b}, cwd=workdir, timeout=120)
    assert only_b.returncode == 0, only_b.stderr
    assert _counts(only_b) == {"reencrypted": 0, "already_current": 255, "failed": 0}
    assert_untouched(workdir)


async def test_rotate_keys_leaves_a_ciphertext_copied_from_another_row_alone(db, database_url, encryption_key,
                                                                            data_dir, workdir):
    key_a = encryption_key
    key_b = Fernet.generate_key().decode()
    vault_a = KeyVault([key_a.encode()])
    plain = await _store(vault_a, "acme", 3, "a")
    victim_id, (_, victim_key) = next(iter(plain.items()))
    stolen = (await ProviderRecord.get(id=victim_id)).key_ciphertext
    # Someone with database access pasted acme's ciphertext onto evil's row, and onto another acme row.
    thief = await _store(vault_a, "evil", 1, "e")
    thief_id = next(iter(thief))
    await ProviderRecord.filter(id=thief_id).update(key_ciphertext=stolen)
    sibling_id = [rid for rid in plain if rid != victim_id][0]
    await ProviderRecord.filter(id=sibling_id).update(key_ciphertext=stolen)

    env = {"LLMP_DATA_DIR": str(data_dir), "LLMP_JWT_SECRET": JWT_SECRET, "LLMP_DATABASE_URL": database_url,
           "LLMP_ENCRYPTION_KEYS": f"{key_b},{key_a}"}
    secrets = (key_a, key_b, JWT_SECRET, victim_key, *(k for _, k in plain.values()))
    result = run_cli("rotate-keys", env=env, cwd=workdir, timeout=120)
    assert result.returncode != 0
    assert _counts(result) == {"reencrypted": 2, "already_current": 0, "failed": 2}
    _assert_no_secrets(result, *secrets)
    # The operator can tell which records need attention.
    assert thief_id in result.stderr and sibling_id in result.stderr
    assert "Traceback" not in result.stderr

    stored = await _ciphertexts()
    assert stored[thief_id] == stolen and stored[sibling_id] == stolen, "copied ciphertexts are left untouched"
    vault_b = KeyVault([key_b.encode()])
    assert vault_b.decrypt("acme", victim_id, stored[victim_id]).get_secret_value() == victim_key
    with pytest.raises(CredentialsUnavailable):
        KeyVault([key_b.encode(), key_a.encode()]).decrypt("evil", thief_id, stored[thief_id])

    # Still failing, still untouched on a rerun: the rest is current.
    again = run_cli("rotate-keys", env=env, cwd=workdir, timeout=120)
    assert again.returncode != 0
    assert _counts(again) == {"reencrypted": 0, "already_current": 2, "failed": 2}
    assert await _ciphertexts() == stored
    assert_untouched(workdir)


def test_rotate_keys_rejects_a_malformed_key_without_echoing_it(base_env, workdir):
    good = Fernet.generate_key().decode()
    bad = "not-a-fernet-key-" + "q" * 30
    result = run_cli("rotate-keys", env={**base_env, "LLMP_ENCRYPTION_KEYS": f"{good},{bad}"}, cwd=workdir)
    assert result.returncode != 0 and result.stdout == ""
    assert "LLMP_ENCRYPTION_KEYS" in result.stderr
    _assert_no_secrets(result, good, bad)
