"""The provider kinds as data: the one place that lists them, their fields, examples and capabilities.

Adapters (one module per kind) add behaviour; validation, the catalog endpoint and the feature rules read
this table and never branch on a kind by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

FEATURES = ("triage", "severity_grading", "walkthrough", "fix_proposal", "agentic_fixer", "scan_agent")
TOOL_CALLING_FEATURES = frozenset({"agentic_fixer", "scan_agent"})


@dataclass(frozen=True)
class KindSpec:
    kind: str
    label: str
    required_fields: tuple[str, ...]
    optional_fields: tuple[str, ...]
    default_base_url_setting: str | None  # the Settings attribute holding the native base URL
    example_models: tuple[str, ...]
    supports_tool_calling: bool
    hints: dict[str, str] = field(default_factory=dict)
    docs_url: str | None = None

    @property
    def supported_features(self) -> tuple[str, ...]:
        if self.supports_tool_calling:
            return FEATURES
        return tuple(f for f in FEATURES if f not in TOOL_CALLING_FEATURES)


_BASE_FIELDS = ("name", "model", "api_key")

KIND_SPECS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            kind="openai",
            label="OpenAI",
            required_fields=_BASE_FIELDS,
            optional_fields=(),
            default_base_url_setting="openai_base_url",
            example_models=("gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini", "o4-mini", "gpt-5"),
            supports_tool_calling=True,
            hints={"api_key": "A secret key from platform.openai.com (starts with sk-)."},
            docs_url="https://platform.openai.com/docs/api-reference/chat",
        ),
        KindSpec(
            kind="anthropic",
            label="Anthropic",
            required_fields=_BASE_FIELDS,
            optional_fields=(),
            default_base_url_setting="anthropic_base_url",
            example_models=("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"),
            supports_tool_calling=False,
            hints={
                "api_key": "A key from console.anthropic.com (starts with sk-ant-).",
                "features": "The tool-calling agents (agentic fixer, scan agent) are not available with Anthropic.",
            },
            docs_url="https://docs.anthropic.com/en/api/messages",
        ),
        KindSpec(
            kind="gemini",
            label="Google Gemini",
            required_fields=_BASE_FIELDS,
            optional_fields=(),
            default_base_url_setting="gemini_base_url",
            example_models=("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"),
            supports_tool_calling=False,
            hints={
                "api_key": "A Gemini API key from Google AI Studio.",
                "features": "The tool-calling agents (agentic fixer, scan agent) are not available with Gemini.",
            },
            docs_url="https://ai.google.dev/api/generate-content",
        ),
        KindSpec(
            kind="azure_openai",
            label="Azure OpenAI",
            required_fields=(*_BASE_FIELDS, "endpoint", "api_version"),
            optional_fields=(),
            default_base_url_setting=None,
            example_models=("gpt-4o-prod", "gpt-4.1-mini-deployment"),
            supports_tool_calling=True,
            hints={
                "endpoint": "The resource endpoint, e.g. https://my-resource.openai.azure.com/ (no /openai path).",
                "model": "The deployment name, not the model name.",
                "api_version": "A data-plane API version such as 2024-10-21, or v1 for the /openai/v1 API.",
            },
            docs_url="https://learn.microsoft.com/azure/ai-foundry/openai/reference",
        ),
        KindSpec(
            kind="openai_compatible",
            label="OpenAI-compatible (Ollama, vLLM, Groq, Together, ...)",
            required_fields=(*_BASE_FIELDS, "endpoint"),
            optional_fields=(),
            default_base_url_setting=None,
            example_models=("llama-3.3-70b-versatile", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "llama3.2"),
            supports_tool_calling=True,
            hints={
                "endpoint": "The API root including /v1, e.g. https://api.groq.com/openai/v1, "
                "https://api.together.xyz/v1 or http://ollama.internal:11434/v1. "
                "Without /v1 it is tried with /v1 appended.",
                "api_key": "Servers that need no key (Ollama) accept any placeholder value.",
                "model": "Groq: llama-3.3-70b-versatile; Together: meta-llama/Llama-3.3-70B-Instruct-Turbo; "
                "Ollama: llama3.2.",
            },
            docs_url=None,
        ),
    )
}

KINDS: tuple[str, ...] = tuple(KIND_SPECS)


def kind_spec(kind: str) -> KindSpec:
    return KIND_SPECS[kind]
