"""OpenAI: Bearer auth, chat completions under `LLMP_OPENAI_BASE_URL` (default https://api.openai.com/v1)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from service.providers.base import ProviderRequest, join_url
from service.providers.openai_style import OpenAIStyleAdapter
from service.providers.target import ProviderTarget


class OpenAIAdapter(OpenAIStyleAdapter):
    kind = "openai"
    label = "OpenAI"
    # Every current OpenAI chat model takes max_completion_tokens; reasoning models (o-series, gpt-5)
    # refuse max_tokens, so it is never sent first.
    default_token_param = "max_completion_tokens"

    def base_url(self, target: ProviderTarget, settings: Any) -> str:
        """The API root including /v1, as the openai SDK's base_url."""
        return settings.openai_base_url.strip().rstrip("/")

    def chat_url(self, target: ProviderTarget, settings: Any, variant: Mapping[str, Any]) -> str:
        return join_url(self.base_url(target, settings), "chat/completions")

    def build_probe_request(self, target: ProviderTarget, settings: Any) -> ProviderRequest:
        """GET models/{model}: free, and 404 model_not_found when the key may not use the model."""
        url = join_url(self.base_url(target, settings), "models", quote(target.model, safe=""))
        return ProviderRequest("GET", url, self.auth_headers(target), None, "probe")
