"""The org's active provider for the platform's AI services: fail closed, cached per process.

Rules: no active provider -> the platform default; an active one serves every feature its kind supports;
a tool-calling feature on a kind without tool calling -> 409 (never the default); a key that cannot be
decrypted -> 503 (never the default).

The cache holds, per org, what the database said (no active provider, or the record with its decrypted key
and the answer already encoded). It is evicted by provider-change events (Redis pub/sub) in every process
and flushed whenever the listener (re)subscribes. An entry is trusted for `TRUSTED_TTL` seconds while the
listener is subscribed and for `UNSUBSCRIBED_TTL` otherwise, judged at read time: when the listener loses
Redis (noticed within a few seconds, see service.events), entries older than a second stop being served.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property

from pydantic import SecretStr

from models.providers import ActiveProvider
from service.context import ServiceContext
from service.errors import Conflict, CredentialsUnavailable, InvalidInput
from service.events import PROVIDERS_CHANGED, EventListener, publish
from service.providers.catalog import FEATURES, TOOL_CALLING_FEATURES, kind_spec
from service.providers.registry import get_adapter
from service.providers.target import ProviderTarget

log = logging.getLogger("llmp.resolve")
TRUSTED_TTL = 30.0
UNSUBSCRIBED_TTL = 1.0
ALL_ORGS = "*"
DEFAULT_ANSWER = {"source": "default", "quota_bypassed": False, "provider": None}
DEFAULT_BODY = json.dumps(DEFAULT_ANSWER).encode()
_FEATURES = frozenset(FEATURES)
_REPUBLISH_FOR = 10.0  # seconds a failed change announcement keeps being retried in the background
_background: set[asyncio.Task] = set()


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

    def __repr__(self) -> str:
        return f"ActiveEntry({self.kind} {self.provider_id}, key={'set' if self.api_key else 'unavailable'})"

    @cached_property
    def answer(self) -> dict:
        assert self.api_key is not None
        return {"source": "byo", "quota_bypassed": True, "provider": {
            "id": self.provider_id, "kind": self.kind, "model": self.model, "base_url": self.base_url,
            "api_version": self.api_version, "api_key": self.api_key.get_secret_value(), "health": self.health}}

    @cached_property
    def body(self) -> bytes:
        return json.dumps(self.answer).encode()


class ActiveProviderCache:
    def __init__(self, listener: EventListener | None = None) -> None:
        self.listener = listener
        self._entries: dict[str, tuple[float, ActiveEntry | None]] = {}
        self._generation: dict[str, int] = {}
        self._epoch = 0
        # One load per org and stamp at a time: concurrent misses (a cold start, right after an eviction)
        # share it instead of each querying the database. A request that arrives after an eviction has a
        # new stamp, so it never joins a load that started before the change.
        self._loading: dict[tuple[str, tuple[int, int]], asyncio.Task] = {}
        if listener is not None:
            listener.on(PROVIDERS_CHANGED, self.invalidate)
            listener.on_connect(lambda: self.invalidate(ALL_ORGS))

    def _ttl(self) -> float:
        return TRUSTED_TTL if self.listener is not None and self.listener.connected else UNSUBSCRIBED_TTL

    def stamp(self, org: str) -> tuple[int, int]:
        return self._epoch, self._generation.get(org, 0)

    def get(self, org: str) -> tuple[bool, ActiveEntry | None]:
        hit = self._entries.get(org)
        if hit is None or time.monotonic() - hit[0] > self._ttl():
            return False, None
        return True, hit[1]

    def put(self, org: str, entry: ActiveEntry | None, stamp: tuple[int, int]) -> None:
        """Store what was loaded, unless an invalidation arrived while it was being loaded."""
        if stamp == self.stamp(org):
            self._entries[org] = (time.monotonic(), entry)

    async def load(self, org: str, loader: Callable[[], Awaitable[ActiveEntry | None]]) -> ActiveEntry | None:
        """What `loader()` says of `org`, stored unless evicted meanwhile; shared by concurrent callers.

        The load runs as a task of its own, so a caller that goes away does not cancel it for the others."""
        stamp = self.stamp(org)
        key = (org, stamp)
        task = self._loading.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(org, stamp, loader))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(task)

    async def _load(self, org: str, stamp: tuple[int, int], loader) -> ActiveEntry | None:
        entry = await loader()
        self.put(org, entry, stamp)
        return entry

    def _loaded(self, key: tuple[str, tuple[int, int]], task: asyncio.Task) -> None:
        self._loading.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: a failed load nobody waits for any more is not reported as lost

    def invalidate(self, org: str) -> None:
        if org == ALL_ORGS:
            self._entries.clear()
            self._generation.clear()
            self._epoch += 1
        else:
            self._entries.pop(org, None)
            self._generation[org] = self._generation.get(org, 0) + 1


async def announce_provider_change(ctx: ServiceContext, org: str) -> None:
    """Evict `org` (or ALL_ORGS) here at once and in every other process through Redis.

    Call it after the change is committed. A publish that fails is retried in the background for a few
    seconds, so a Redis blip does not leave other processes on the old provider until their TTL ends.
    """
    cache = ctx.extras.get("active_cache")
    if cache is not None:
        cache.invalidate(org)
    if ctx.redis is None or await publish(ctx.redis, PROVIDERS_CHANGED, org):
        return
    task = asyncio.get_running_loop().create_task(_republish(ctx.redis, org))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _republish(redis, org: str) -> None:
    deadline = time.monotonic() + _REPUBLISH_FOR
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if await publish(redis, PROVIDERS_CHANGED, org):
            return
    log.error("provider change of %s could not be announced; other processes see it within %g s",
              org, TRUSTED_TTL)


async def load_active(ctx: ServiceContext, org: str) -> ActiveEntry | None:
    """The org's active provider as one consistent read (pointer and record in one query)."""
    pointer = await ActiveProvider.filter(org=org).select_related("provider").first()
    if pointer is None:
        return None
    record = pointer.provider
    api_key: SecretStr | None
    try:
        api_key = ctx.vault.decrypt(record.org, str(record.id), record.key_ciphertext)
    except CredentialsUnavailable:
        log.error("active provider %s of org %s has a key that cannot be decrypted", record.id, org)
        api_key = None
    target = ProviderTarget(kind=record.kind, model=record.model, api_key=api_key or SecretStr(""),
                            endpoint=record.endpoint, api_version=record.api_version)
    return ActiveEntry(
        provider_id=str(record.id), kind=record.kind, model=record.model,
        base_url=get_adapter(record.kind).base_url(target, ctx.settings), api_version=record.api_version,
        api_key=api_key,
        health={"status": record.health_status,
                "checked_at": record.health_checked_at.isoformat() if record.health_checked_at else None,
                "consecutive_failures": record.health_consecutive_failures},
    )


async def active_entry(ctx: ServiceContext, org: str, feature: str) -> ActiveEntry | None:
    """The usable active provider for `feature`, None for the platform default; raises when it fails closed."""
    if feature not in _FEATURES:
        raise InvalidInput({"feature": "must be one of " + ", ".join(FEATURES)})
    cache: ActiveProviderCache = ctx.extras["active_cache"]
    found, entry = cache.get(org)
    if not found:
        entry = await cache.load(org, lambda: load_active(ctx, org))
    if entry is None:
        return None
    if feature in TOOL_CALLING_FEATURES:
        spec = kind_spec(entry.kind)
        if not spec.supports_tool_calling:
            raise FeatureUnsupported(
                f"This organization's active provider is {spec.label}, which does not support the tool-calling "
                f"agents; {feature} is unavailable until an owner or admin activates an OpenAI, Azure OpenAI or "
                "OpenAI-compatible provider. The platform's own keys are not used for it.",
                provider_id=entry.provider_id, kind=entry.kind, feature=feature)
    if entry.api_key is None:
        raise CredentialsUnavailable(
            "The organization's active provider has an API key that cannot be decrypted; the feature is "
            "unavailable until an owner or admin enters the key again. The platform's keys are not used.",
            provider_id=entry.provider_id)
    return entry


async def resolve_active_provider(ctx: ServiceContext, org: str, feature: str) -> dict:
    entry = await active_entry(ctx, org, feature)
    return dict(DEFAULT_ANSWER) if entry is None else entry.answer


async def resolve_active_body(ctx: ServiceContext, org: str, feature: str) -> bytes:
    """The answer of `/internal/active-provider`, already encoded (cached with the entry)."""
    entry = await active_entry(ctx, org, feature)
    return DEFAULT_BODY if entry is None else entry.body
