"""OpenAI-compatible servers (Groq, Together, vLLM, Ollama, LM Studio, ...): Bearer auth on the record's endpoint.

Users type the endpoint with or without the trailing `/v1`. `base_url` is the endpoint as typed when its
path ends in a version segment (`/v1`, `/openai/v1`, `/api/v1beta`) or is any other path, and the endpoint
plus `/v1` when it is a bare host (Ollama, vLLM and LM Studio all serve under /v1). The check asks
`base_url` first; when that answers 404/405 and the answer is not about the model, it asks once more at the
other form (the endpoint plus `/v1`, or the bare host as typed). The result records the base that answered,
and activation stores it as the endpoint (`endpoint_for_base`), so `base_url` is then the base that works.

Servers differ: Ollama accepts any key; vLLM answers a bad key with 401 {"error": "Unauthorized"}.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from yarl import URL

from service.providers.base import ProviderRequest, ProviderResponse, Verdict, join_url
from service.providers.openai_style import OpenAIStyleAdapter
from service.providers.target import ProviderTarget

_VERSIONED = re.compile(r"/v\d+[a-z0-9]*$", re.IGNORECASE)


class OpenAICompatibleAdapter(OpenAIStyleAdapter):
    kind = "openai_compatible"
    label = "the OpenAI-compatible server"
    default_token_param = "max_tokens"  # what every compatible server knows; refusals switch once

    def candidate_bases(self, target: ProviderTarget) -> list[str]:
        """The bases to try, in order: base_url first, then the other spelling (see the module docstring)."""
        typed = (target.endpoint or "").strip().rstrip("/")
        path = URL(typed).path.rstrip("/") if typed else ""
        if _VERSIONED.search(path):
            return [typed]
        with_v1 = join_url(typed, "v1")
        return [with_v1, typed] if not path else [typed, with_v1]

    def base_url(self, target: ProviderTarget, settings: Any) -> str:
        return self.candidate_bases(target)[0]

    def chat_url(self, target: ProviderTarget, settings: Any, variant: Mapping[str, Any]) -> str:
        bases = self.candidate_bases(target)
        return join_url(bases[min(variant.get("base", 0), len(bases) - 1)], "chat/completions")

    def build_probe_request(self, target: ProviderTarget, settings: Any, base: int = 0) -> ProviderRequest:
        """GET models and look for the model in the list (servers have no per-model read)."""
        bases = self.candidate_bases(target)
        url = join_url(bases[min(base, len(bases) - 1)], "models")
        return ProviderRequest("GET", url, self.auth_headers(target), None, "probe", {"base": base, "model": target.model})

    def accept_success(self, request: ProviderRequest, payload: Any) -> Verdict:
        if request.purpose != "probe":
            return super().accept_success(request, payload)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            return self._not_provider_format(200)
        wanted = request.variant.get("model", "")
        names = {str(item.get("id")) for item in payload["data"] if isinstance(item, dict)}
        # Ollama lists "llama3.2:latest" for a model pulled as "llama3.2".
        if wanted in names or f"{wanted}:latest" in names or wanted.removesuffix(":latest") in names:
            return Verdict.success()
        return Verdict.failure(
            "model_not_found", "The OpenAI-compatible server does not list this model. Check the model name."
        )

    def next_request(
        self,
        target: ProviderTarget,
        settings: Any,
        request: ProviderRequest,
        response: ProviderResponse,
        verdict: Verdict,
    ) -> ProviderRequest | None:
        retry = super().next_request(target, settings, request, response, verdict)
        if retry is not None:
            return retry
        base = request.variant.get("base", 0)
        wrong_path = response.status in (404, 405) and verdict.code != "model_not_found"
        if not wrong_path or base != 0 or len(self.candidate_bases(target)) < 2:
            return None
        if request.purpose == "probe":
            return self.build_probe_request(target, settings, base=1)
        return self.build_check_request(target, settings, {**request.variant, "base": 1})

    def resolved_base_url(self, target: ProviderTarget, settings: Any, request: ProviderRequest) -> str:
        """The base a successful `request` went to."""
        bases = self.candidate_bases(target)
        return bases[min(request.variant.get("base", 0), len(bases) - 1)]

    def endpoint_for_base(self, target: ProviderTarget, settings: Any, base: str) -> str | None:
        """`base` as the endpoint when the check needed the other spelling (typed without the `/v1` the server
        needs). A bare host that answered where its `/v1` did not cannot be spelled so: None."""
        if base == self.base_url(target, settings):
            return None
        endpoint = base.rstrip("/") + "/"
        return endpoint if self.candidate_bases(replace(target, endpoint=endpoint))[0] == base else None
