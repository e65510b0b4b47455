"""Start-up refuses what would only fail later, with a message that says what to do."""
from __future__ import annotations

import sqlite3

import pytest

from service.config import ConfigurationError, Settings


def _settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, env="development", data_dir=tmp_path, **values)


def test_an_sqlite_too_old_for_the_job_runner_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(ConfigurationError, match=r"SQLite 3\.35 or newer is needed .* has 3\.31\.1"):
        _settings(tmp_path).validate_for_startup()


def test_an_old_sqlite_does_not_matter_on_postgresql(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    _settings(tmp_path, database_url="postgres://postgres@127.0.0.1:5432/llmp").validate_for_startup()


def test_this_pythons_sqlite_runs_the_embedded_default(tmp_path):
    _settings(tmp_path).validate_for_startup()
