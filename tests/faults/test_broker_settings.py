"""The redelivery knobs an operator sets: LLMP_VISIBILITY_TIMEOUT and how it reaches the Redis transport."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from service.config import ConfigurationError, Settings
from tasks.celery_config import celery_settings


def _settings(tmp_path, **values) -> Settings:
    base = dict(env="production", data_dir=tmp_path, broker_url="redis://127.0.0.1:6399/0",
                encryption_keys=Fernet.generate_key().decode(), jwt_secret="s" * 48)
    base.update(values)
    return Settings(_env_file=None, **base)


def _transport(settings: Settings) -> dict:
    return celery_settings(settings)["broker_transport_options"]


def test_default_visibility_timeout_outlasts_the_job_deadline(tmp_path):
    options = _transport(_settings(tmp_path))
    assert options["visibility_timeout"] == 300  # max(300, 2 x 120)
    # Scanned every 10 s (kombu alone scans every ~100 s), so a lost message is back within 310 s.
    assert options["unacked_restore_interval"] == 10 and options["unacked_restore_throttle"] == 1
    assert _transport(_settings(tmp_path, job_deadline=400))["visibility_timeout"] == 800


def test_an_explicit_visibility_timeout_is_used_and_scanned_often_enough(tmp_path):
    options = _transport(_settings(tmp_path, env="test", visibility_timeout=4, job_deadline=30))
    assert options["visibility_timeout"] == 4 and options["unacked_restore_interval"] == 1


def test_production_refuses_a_visibility_timeout_below_the_job_deadline(tmp_path):
    with pytest.raises(ConfigurationError, match="LLMP_VISIBILITY_TIMEOUT"):
        _settings(tmp_path, visibility_timeout=60, job_deadline=120).validate_for_startup()
    _settings(tmp_path, visibility_timeout=120, job_deadline=120).validate_for_startup()
    _settings(tmp_path).validate_for_startup()
    _settings(tmp_path, env="development", visibility_timeout=4).validate_for_startup()  # tests may go lower


def test_the_setting_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMP_VISIBILITY_TIMEOUT", "900")
    assert Settings(_env_file=None, data_dir=tmp_path).effective_visibility_timeout == 900
