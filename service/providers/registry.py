"""The one dispatch on kind: kind -> adapter. Everything else asks here and never branches on a kind."""
from __future__ import annotations

from service.providers.anthropic import AnthropicAdapter
from service.providers.azure_openai import AzureOpenAIAdapter
from service.providers.base import ProviderAdapter
from service.providers.catalog import KINDS
from service.providers.gemini import GeminiAdapter
from service.providers.openai import OpenAIAdapter
from service.providers.openai_compatible import OpenAICompatibleAdapter

ADAPTERS: dict[str, ProviderAdapter] = {
    adapter.kind: adapter
    for adapter in (
        OpenAIAdapter(),
        AnthropicAdapter(),
        GeminiAdapter(),
        AzureOpenAIAdapter(),
        OpenAICompatibleAdapter(),
    )
}

# The catalog is the one list of kinds; an adapter for every kind and none for a kind it does not know.
if set(ADAPTERS) != set(KINDS):
    raise RuntimeError(f"adapters {sorted(ADAPTERS)} do not match the catalog's kinds {sorted(KINDS)}")


class UnknownKind(KeyError):
    """No adapter for this kind."""


def get_adapter(kind: str) -> ProviderAdapter:
    """The adapter for `kind`; UnknownKind when the catalog has no such kind."""
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise UnknownKind(kind) from None
