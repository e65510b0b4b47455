"""What the service layer needs from its process, assembled once by the API app or the worker."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.config import Settings
from service.crypto import KeyVault


@dataclass
class ServiceContext:
    settings: Settings
    vault: KeyVault
    http: Any = None  # service.egress.EgressClient, shared by every check of the process
    redis: Any = None  # redis.asyncio.Redis when a Redis URL is configured
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ServiceContext:
        return cls(settings=settings, vault=KeyVault(settings.fernet_keys), **kwargs)
