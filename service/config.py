"""Settings: every `LLMP_*` environment variable, in one place.

Development secrets (encryption key, JWT secret) are generated once into the data dir so a newcomer
needs no set-up; production refuses to start on them.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
from functools import cached_property
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRETS_FILE = "dev-secrets.json"
MIN_SQLITE = (3, 35)  # UPDATE ... RETURNING (service/job_sql.py)


class ConfigurationError(RuntimeError):
    """The settings cannot run the service (for example production on development secrets)."""


class Settings(BaseSettings):
    # An empty variable (`LLMP_ALERT_WEBHOOK_URL=` from a compose default) means unset.
    model_config = SettingsConfigDict(env_prefix="LLMP_", env_file=".env", extra="ignore", env_ignore_empty=True)

    env: str = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    broker_url: str | None = None
    redis_url: str | None = None
    encryption_keys: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    egress_allow: str = ""
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_base_url: str = "https://api.anthropic.com"
    gemini_base_url: str = "https://generativelanguage.googleapis.com"
    check_timeout: float = Field(15.0, gt=0)
    sync_wait: float = Field(10.0, ge=0)
    health_interval: float = Field(300.0, gt=0)
    health_failures_to_flag: int = Field(3, ge=1)
    alert_webhook_url: str | None = None
    alert_webhook_secret: SecretStr | None = None
    rate_limit_checks: str = "30/minute"
    # Not in the outer contract: how long a job may stay queued or running before the sweeper fails it
    # as `worker_lost`, and how many checks one worker process runs at once.
    job_deadline: float = Field(120.0, gt=0)
    queue_name: str = Field("llmp", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    worker_concurrency: int = Field(100, ge=1, le=1000)
    # Seconds before the Redis broker hands an unacknowledged message (its worker died) to another worker.
    # Unset: max(300, 2 x job_deadline), so a redelivered job is always past its deadline and only ends as
    # `worker_lost`. Lower values let another worker re-run a lost job within its deadline, but also
    # redeliver messages a live worker still holds (running or prefetched), which then run twice (one
    # result is kept); production therefore refuses values below job_deadline.
    visibility_timeout: float | None = Field(None, gt=0)

    @property
    def effective_visibility_timeout(self) -> float:
        if self.visibility_timeout is not None:
            return self.visibility_timeout
        return float(max(300, int(self.job_deadline * 2)))

    @field_validator("env")
    @classmethod
    def _known_env(cls, value: str) -> str:
        if value not in ("development", "production", "test"):
            raise ValueError("LLMP_ENV must be development, production or test")
        return value

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @cached_property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite://{self.data_path / 'llm-providers.sqlite3'}"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def uses_embedded_broker(self) -> bool:
        return self.effective_broker_url.startswith("filesystem://")

    @property
    def effective_redis_url(self) -> str | None:
        if self.redis_url:
            return self.redis_url
        broker = self.effective_broker_url
        return broker if broker.startswith(("redis://", "rediss://")) else None

    @property
    def broker_folder(self) -> Path:
        return self.data_path / "broker"

    @cached_property
    def rate_limit(self) -> tuple[int, int]:
        """`LLMP_RATE_LIMIT_CHECKS` as (calls, window seconds)."""
        return parse_rate(self.rate_limit_checks)

    @cached_property
    def fernet_keys(self) -> list[bytes]:
        raw = self.encryption_keys.get_secret_value() if self.encryption_keys else ""
        keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
        if not keys:
            keys = [self._dev_secrets()["encryption_key"].encode()]
        for key in keys:
            try:
                Fernet(key)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError("LLMP_ENCRYPTION_KEYS holds a value that is not a Fernet key") from exc
        return keys

    @cached_property
    def jwt_key(self) -> str:
        if self.jwt_secret and self.jwt_secret.get_secret_value():
            return self.jwt_secret.get_secret_value()
        return self._dev_secrets()["jwt_secret"]

    @cached_property
    def egress_allow_list(self) -> list[str]:
        return [item.strip() for item in self.egress_allow.split(",") if item.strip()]

    def validate_for_startup(self) -> None:
        """Refuse production on generated secrets or the embedded broker, and any SQLite too old to run jobs."""
        parse_rate(self.rate_limit_checks)
        if self.effective_database_url.startswith("sqlite") and sqlite3.sqlite_version_info < MIN_SQLITE:
            raise ConfigurationError(
                f"SQLite {'.'.join(map(str, MIN_SQLITE))} or newer is needed (UPDATE ... RETURNING, used by the "
                f"job runner); this Python has {sqlite3.sqlite_version}. Use PostgreSQL (LLMP_DATABASE_URL) or "
                "a newer Python build.")
        if not self.is_production:
            return
        problems = []
        if not self.encryption_keys or not self.encryption_keys.get_secret_value().strip():
            problems.append("LLMP_ENCRYPTION_KEYS is not set")
        if not self.jwt_secret or not self.jwt_secret.get_secret_value():
            problems.append("LLMP_JWT_SECRET is not set")
        if self.uses_embedded_broker:
            problems.append("LLMP_BROKER_URL is the embedded broker")
        if self.visibility_timeout is not None and self.visibility_timeout < self.job_deadline:
            problems.append("LLMP_VISIBILITY_TIMEOUT is below LLMP_JOB_DEADLINE (live jobs would be redelivered)")
        if problems:
            raise ConfigurationError("production refuses to start: " + "; ".join(problems))
        self.fernet_keys  # noqa: B018 - validates the keys

    def _dev_secrets(self) -> dict[str, str]:
        if self.is_production:
            raise ConfigurationError("production needs LLMP_ENCRYPTION_KEYS and LLMP_JWT_SECRET")
        return load_or_create_dev_secrets(self.data_path)


def load_or_create_dev_secrets(data_path: Path) -> dict[str, str]:
    """Create the development secrets once (O_EXCL, so processes started together agree), then read them."""
    data_path.mkdir(parents=True, exist_ok=True)
    path = data_path / DEV_SECRETS_FILE
    if not path.exists():
        fresh = {"encryption_key": Fernet.generate_key().decode(), "jwt_secret": secrets.token_urlsafe(48)}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(fresh, handle)
        try:
            os.link(tmp, path)  # atomic and fails if another process won the race
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return json.loads(path.read_text())


_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(text: str) -> tuple[int, int]:
    """Parse `N/period` (`30/minute`, `5/second`, `1000/hour`)."""
    try:
        count_text, period = text.strip().split("/", 1)
        count = int(count_text)
        window = _PERIODS[period.strip().lower().rstrip("s")]
    except (ValueError, KeyError) as exc:
        raise ConfigurationError(f"LLMP_RATE_LIMIT_CHECKS must look like 30/minute, not {text!r}") from exc
    if count < 1:
        raise ConfigurationError("LLMP_RATE_LIMIT_CHECKS must allow at least one call")
    return count, window
