"""Fake provider servers speaking each provider's real wire format (see tests/fakes/server.py)."""
from tests.fakes.server import FakeProviders, start_fake_providers

__all__ = ["FakeProviders", "start_fake_providers"]
