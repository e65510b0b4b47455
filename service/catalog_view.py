"""The catalog as the API shows it: the kinds table plus this deployment's base URLs."""
from __future__ import annotations

from service.config import Settings
from service.providers.catalog import FEATURES, KIND_SPECS, TOOL_CALLING_FEATURES


def catalog_view(settings: Settings) -> dict:
    kinds = []
    for spec in KIND_SPECS.values():
        base = getattr(settings, spec.default_base_url_setting) if spec.default_base_url_setting else None
        kinds.append({
            "kind": spec.kind,
            "label": spec.label,
            "required_fields": ["kind", *spec.required_fields],
            "optional_fields": list(spec.optional_fields),
            "default_base_url": base,
            "example_models": list(spec.example_models),
            "supports_tool_calling": spec.supports_tool_calling,
            "supported_features": list(spec.supported_features),
            "hints": dict(spec.hints),
            "docs_url": spec.docs_url,
        })
    return {"kinds": kinds, "features": list(FEATURES), "tool_calling_features": sorted(TOOL_CALLING_FEATURES)}
