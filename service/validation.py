"""Input shapes for provider records and the rules that need no database: one source for the API's
validation and its OpenAPI document."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from yarl import URL

from service.errors import InvalidInput
from service.providers.catalog import KINDS, kind_spec

Kind = Literal["openai", "anthropic", "gemini", "azure_openai", "openai_compatible"]
assert set(Kind.__args__) == set(KINDS)  # noqa: S101 - the Literal must follow the catalog

MAX_RECORDS_PER_ORG = 100


def _name(default=...):
    return Field(default, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")


def _model(default=...):
    return Field(default, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


def _api_key(default=...):
    return Field(default, min_length=1, max_length=4096)


def _endpoint():
    return Field(None, min_length=1, max_length=2048)


def _api_version():
    return Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("api_key", check_fields=False)
    @classmethod
    def _key_has_no_whitespace(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(ch.isspace() for ch in value.get_secret_value()):
            raise ValueError("must not contain whitespace")
        return value

    @field_validator("endpoint", check_fields=False)
    @classmethod
    def _endpoint_is_plain_url(cls, value: str | None) -> str | None:
        return None if value is None else normalize_endpoint(value)


class ProviderCreate(_Strict):
    kind: Kind
    name: str = _name()
    model: str = _model()
    api_key: SecretStr = _api_key()
    endpoint: str | None = _endpoint()
    api_version: str | None = _api_version()


class ProviderUpdate(_Strict):
    name: str | None = _name(None)
    model: str | None = _model(None)
    api_key: SecretStr | None = _api_key(None)
    endpoint: str | None = _endpoint()
    api_version: str | None = _api_version()


class DiscoverModelsRequest(_Strict):
    """Candidate credentials, before they are saved (the same field rules as creating a record)."""

    kind: Kind
    api_key: SecretStr = _api_key()
    endpoint: str | None = _endpoint()
    api_version: str | None = _api_version()


def normalize_endpoint(raw: str) -> str:
    """An absolute http(s) URL without user-info, query or fragment, ending in exactly one "/"."""
    try:
        url = URL(raw.strip())
    except (ValueError, TypeError):
        raise ValueError("must be an absolute http(s) URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an absolute http(s) URL")
    if url.user is not None or url.password is not None or "@" in url.raw_authority:
        raise ValueError("must not contain a user name or password")
    if url.query_string or "?" in raw:
        raise ValueError("must not contain a query string")
    if url.fragment or "#" in raw:
        raise ValueError("must not contain a fragment")
    path = url.raw_path.rstrip("/")
    if "//" in path:
        raise ValueError("must not contain empty path segments")
    port = f":{url.explicit_port}" if url.explicit_port else ""
    host = url.raw_host or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{url.scheme}://{host.lower()}{port}{path}/"


def parse_body(model: type[BaseModel], data: object) -> BaseModel:
    """Validate a decoded JSON body; `InvalidInput` names every offending field."""
    if not isinstance(data, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(fields_from(exc)) from None


def fields_from(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "body"
        reason = "unknown field" if error["type"] == "extra_forbidden" else _reason(error)
        fields.setdefault(name, reason)
    return fields


def _reason(error: dict) -> str:
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if error["type"] == "literal_error" and error["loc"] == ("kind",):
        return "must be one of " + ", ".join(KINDS)
    if error["type"] == "string_pattern_mismatch":
        return "contains characters that are not allowed"
    return message[0].lower() + message[1:]


def check_kind_fields(kind: str, values: dict[str, object]) -> None:
    """The fields a kind requires are present, and fields it does not use are absent."""
    spec = kind_spec(kind)
    problems = {}
    for name in ("endpoint", "api_version"):
        value = values.get(name)
        if name in spec.required_fields and not value:
            problems[name] = f"is required for {spec.label}"
        elif name not in spec.required_fields and name not in spec.optional_fields and value:
            problems[name] = f"is not used by {spec.label}"
    if problems:
        raise InvalidInput(problems)
