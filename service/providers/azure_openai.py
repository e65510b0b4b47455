"""Azure OpenAI: `api-key` header on the resource endpoint; the record's model is the deployment.

Two URL styles: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=V` for dated
api-versions, and the newer `{endpoint}/openai/v1/chat/completions` (deployment in the body) when the
api_version is `v1`. Error bodies (real answers):
  401 {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. ..."}}
  404 {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. ..."}}
  404 {"error": {"code": "404", "message": "Resource not found"}}   (wrong api-version or path: not the model)
  429 {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API
       version ... have exceeded token rate limit ... Please retry after 6 seconds. ..."}}
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from service.providers.base import ident, join_url, key_value, status_label
from service.providers.openai_style import OpenAIStyleAdapter, classify_openai_error, openai_error_fields
from service.providers.target import ProviderTarget
from service.redact import excerpt

# Dated api-versions from this one on accept max_completion_tokens (needed by o-series deployments).
_COMPLETION_TOKENS_SINCE = "2024-09-01"
_OPENAI_SUFFIX = re.compile(r"/openai(/v1)?/?$")


class AzureOpenAIAdapter(OpenAIStyleAdapter):
    kind = "azure_openai"
    label = "Azure OpenAI"
    request_id_headers = ("x-request-id", "apim-request-id")

    def base_url(self, target: ProviderTarget, settings: Any) -> str:
        """The resource endpoint (the SDK's azure_endpoint), without an `/openai` path typed by mistake."""
        endpoint = (target.endpoint or "").strip().rstrip("/")
        return _OPENAI_SUFFIX.sub("", endpoint + "/").rstrip("/")

    def is_v1(self, target: ProviderTarget) -> bool:
        return (target.api_version or "").strip().lower() == "v1"

    def token_param(self, target: ProviderTarget) -> str:
        version = (target.api_version or "").strip()
        if self.is_v1(target) or version[:10] >= _COMPLETION_TOKENS_SINCE:
            return "max_completion_tokens"
        return "max_tokens"

    def model_in_body(self, target: ProviderTarget) -> bool:
        return self.is_v1(target)

    def auth_headers(self, target: ProviderTarget) -> dict[str, str]:
        return {"api-key": key_value(target)}

    def chat_url(self, target: ProviderTarget, settings: Any, variant: Mapping[str, Any]) -> str:
        base = self.base_url(target, settings)
        if self.is_v1(target):
            return join_url(base, "openai/v1/chat/completions")
        deployment = quote(target.model, safe="")
        url = join_url(base, "openai/deployments", deployment, "chat/completions")
        return f"{url}?api-version={quote((target.api_version or '').strip(), safe='')}"

    # No build_probe_request: the v1 GA data plane has no free per-deployment read with an api-key, so
    # health checks fall back to the generation check.

    def classify_error(self, status: int, payload: Any, key: SecretStr | str | None = None) -> tuple[str, str]:
        code, etype, message, _param = openai_error_fields(payload)
        c, m = str(code or "").lower(), message.lower()
        shown = status_label(status, ident(code, etype))
        if c == "deploymentnotfound":
            return "model_not_found", (
                f"Azure OpenAI has no deployment with this name on the resource ({shown}). The model field must be "
                "the deployment name; a deployment created in the last minutes may not be ready yet."
            )
        if c == "operationnotsupported":
            return "model_not_found", f"This Azure OpenAI deployment does not support chat completions ({shown})."
        if status == 404 and "resource not found" in m:
            return "bad_request", (
                f"Azure OpenAI answered {shown} Resource not found: the api-version or the endpoint path is wrong "
                "for this resource. Check the api_version and that the endpoint is the resource endpoint."
            )
        if status == 401:
            return "invalid_api_key", (
                f"The API key was rejected by Azure OpenAI ({shown}). Check the key and that the endpoint is the "
                "key's own resource."
            )
        if status == 403 and c != "insufficient_quota":
            said = excerpt(message, key)
            return "permission_denied", (
                f"Azure OpenAI refused the request ({shown}): network rules or key authentication settings of the "
                f"resource do not allow it." + (f' Azure said: "{said}"' if said else "")
            )
        return classify_openai_error(status, payload, self.label, key)
