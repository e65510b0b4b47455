"""What an adapter needs to reach one provider: kind, model, key and address, nothing of storage."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class ProviderTarget:
    kind: str
    model: str
    api_key: SecretStr
    endpoint: str | None = None  # normalized: absolute http(s) URL ending in exactly one "/"
    api_version: str | None = None
