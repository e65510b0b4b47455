"""The org's active provider for the platform's AI services: fail closed, cached per process.

Rules: no active provider -> the platform default; an active one serves every feature its kind supports;
a tool-calling feature on a kind without tool calling -> 409 (never the default); a key that cannot be
decrypted -> 503 (never the default).

The cache holds the active pointer and the decrypted record per org. It is evicted by provider-change
events (Redis pub/sub) in every process, flushed whenever the listener (re)subscribes, and trusted for
at most `TRUSTED_TTL` seconds while subscribed, `UNSUBSCRIBED_TTL` when it is not, so a change is seen
everywhere within a second even if an event is lost.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pydantic import SecretStr

from models.providers import ActiveProvider, ProviderRecord
from service.context import ServiceContext
from service.errors import Conflict, CredentialsUnavailable, InvalidInput
from service.events import PROVIDERS_CHANGED, EventListener, publish
from service.providers.catalog import FEATURES, TOOL_CALLING_FEATURES, kind_spec
from service.providers.registry import get_adapter
from service.records import target_of

log = logging.getLogger("llmp.resolve")
TRUSTED_TTL = 30.0
UNSUBSCRIBED_TTL = 1.0
ALL_ORGS = "*"
DEFAULT_ANSWER = {"source": "default", "quota_bypassed": False, "provider": None}


class FeatureUnsupported(Conflict):
    code = "feature_unsupported_by_provider"


@dataclass(frozen=True)
class ActiveEntry:
    """What resolve needs of an org's active provider; `api_key` None means it could not be decrypted."""

    provider_id: str
    kind: str
    model: str
    base_url: str
    api_version: str | None
    api_key: SecretStr | None
    health: dict


class ActiveProviderCache:
    def __init__(self, listener: EventListener | None = None) -> None:
        self.listener = listener
        self._entries: dict[str, tuple[float, ActiveEntry | None]] = {}
        self._generation: dict[str, int] = {}
        self._epoch = 0
        if listener is not None:
            listener.on(PROVIDERS_CHANGED, self.invalidate)
            listener.on_connect(lambda: self.invalidate(ALL_ORGS))

    def _ttl(self) -> float:
        return TRUSTED_TTL if self.listener is not None and self.listener.connected else UNSUBSCRIBED_TTL

    def stamp(self, org: str) -> tuple[int, int]:
        return self._epoch, self._generation.get(org, 0)

    def get(self, org: str) -> tuple[bool, ActiveEntry | None]:
        hit = self._entries.get(org)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, org: str, entry: ActiveEntry | None, stamp: tuple[int, int]) -> None:
        """Store what was loaded, unless an invalidation arrived while it was being loaded."""
        if stamp == self.stamp(org):
            self._entries[org] = (time.monotonic() + self._ttl(), entry)

    def invalidate(self, org: str) -> None:
        if org == ALL_ORGS:
            self._entries.clear()
            self._epoch += 1
        else:
            self._entries.pop(org, None)
            self._generation[org] = self._generation.get(org, 0) + 1


async def announce_provider_change(ctx: ServiceContext, org: str) -> None:
    """Evict `org` (or ALL_ORGS) here at once and in every other process through Redis."""
    cache = ctx.extras.get("active_cache")
    if cache is not None:
        cache.invalidate(org)
    await publish(ctx.redis, PROVIDERS_CHANGED, org)


async def load_active(ctx: ServiceContext, org: str) -> ActiveEntry | None:
    pointer = await ActiveProvider.get_or_none(org=org)
    if pointer is None:
        return None
    record = await ProviderRecord.get(id=pointer.provider_id)
    try:
        target = target_of(ctx, record)
        api_key = target.api_key
    except CredentialsUnavailable:
        log.error("active provider %s of org %s has a key that cannot be decrypted", record.id, org)
        target, api_key = target_of(ctx, record, {"api_key": SecretStr("")}), None
    return ActiveEntry(
        provider_id=str(record.id), kind=record.kind, model=record.model,
        base_url=get_adapter(record.kind).base_url(target, ctx.settings), api_version=record.api_version,
        api_key=api_key,
        health={"status": record.health_status,
                "checked_at": record.health_checked_at.isoformat() if record.health_checked_at else None,
                "consecutive_failures": record.health_consecutive_failures},
    )


async def resolve_active_provider(ctx: ServiceContext, org: str, feature: str) -> dict:
    if feature not in FEATURES:
        raise InvalidInput({"feature": "must be one of " + ", ".join(FEATURES)})
    cache: ActiveProviderCache = ctx.extras["active_cache"]
    found, entry = cache.get(org)
    if not found:
        stamp = cache.stamp(org)
        entry = await load_active(ctx, org)
        cache.put(org, entry, stamp)
    if entry is None:
        return DEFAULT_ANSWER
    spec = kind_spec(entry.kind)
    if feature in TOOL_CALLING_FEATURES and not spec.supports_tool_calling:
        raise FeatureUnsupported(
            f"This organization's active provider is {spec.label}, which does not support the tool-calling "
            f"agents; {feature} is unavailable until an owner or admin activates an OpenAI, Azure OpenAI or "
            "OpenAI-compatible provider. The platform's own keys are not used for it.",
            provider_id=entry.provider_id, kind=entry.kind)
    if entry.api_key is None:
        raise CredentialsUnavailable(
            "The organization's active provider has an API key that cannot be decrypted; the feature is "
            "unavailable until an owner or admin enters the key again. The platform's keys are not used.",
            provider_id=entry.provider_id)
    return {"source": "byo", "quota_bypassed": True, "provider": {
        "id": entry.provider_id, "kind": entry.kind, "model": entry.model, "base_url": entry.base_url,
        "api_version": entry.api_version, "api_key": entry.api_key.get_secret_value(), "health": entry.health}}
