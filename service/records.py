"""Provider records: the rules for create, read, update and delete, and the record as the API shows it."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.providers import ActiveProvider, ProviderRecord
from service.audit import record_audit
from service.auth import Principal
from service.context import ServiceContext
from service.crypto import last4
from service.egress import EndpointBlocked, validate_endpoint
from service.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from service.providers.catalog import kind_spec
from service.providers.target import ProviderTarget
from service.validation import MAX_RECORDS_PER_ORG, ProviderCreate, ProviderUpdate, check_kind_fields

# Fields whose change invalidates an earlier live check.
CHECKED_FIELDS = ("api_key", "model", "endpoint", "api_version")


def _parse_id(provider_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(provider_id))
    except ValueError:
        raise NotFound("No provider with this id.", code="provider_not_found") from None


async def get_record(org: str, provider_id: str) -> ProviderRecord:
    """The org's record; another org's id is as absent as an unknown one."""
    record = await ProviderRecord.get_or_none(id=_parse_id(provider_id), org=org)
    if record is None:
        raise NotFound("No provider with this id.", code="provider_not_found")
    return record


async def active_provider_id(org: str) -> uuid.UUID | None:
    pointer = await ActiveProvider.get_or_none(org=org).values("provider_id")
    return pointer["provider_id"] if pointer else None


async def list_records(org: str) -> tuple[list[ProviderRecord], uuid.UUID | None]:
    records = await ProviderRecord.filter(org=org).order_by("created_at", "id")
    return records, await active_provider_id(org)


async def _guard_endpoint(ctx: ServiceContext, endpoint: str | None) -> None:
    """Refuse at save time what every check would refuse (the guard runs again at each call)."""
    if endpoint:
        try:
            await validate_endpoint(endpoint, ctx.settings)
        except EndpointBlocked as exc:
            raise InvalidInput({"endpoint": exc.message}) from None


async def create_record(ctx: ServiceContext, principal: Principal, data: ProviderCreate) -> ProviderRecord:
    org = principal.org
    check_kind_fields(data.kind, data.model_dump())
    await _guard_endpoint(ctx, data.endpoint)
    record_id = uuid.uuid4()
    try:
        async with in_transaction():
            if await ProviderRecord.filter(org=org).count() >= MAX_RECORDS_PER_ORG:
                raise LimitExceeded(
                    f"An organization can have at most {MAX_RECORDS_PER_ORG} providers; delete one first.",
                    code="too_many_providers",
                )
            record = await ProviderRecord.create(
                id=record_id,
                org=org,
                kind=data.kind,
                name=data.name,
                model=data.model,
                endpoint=data.endpoint,
                api_version=data.api_version,
                key_ciphertext=ctx.vault.encrypt(org, str(record_id), data.api_key),
                key_last4=last4(data.api_key),
            )
            # In the same transaction: a database lost between the two must not leave a record without its
            # audit entry (the caller got 503 and would find the record there).
            await record_audit(principal, "create", "ok", provider_id=record.id,
                               details={"kind": data.kind, "name": data.name, "model": data.model})
    except IntegrityError:
        raise Conflict(f"A provider named {data.name!r} already exists.", code="name_taken") from None
    return record


@dataclass
class PlannedUpdate:
    """An update split into what applies at once and what must pass a live check first."""

    immediate: dict[str, Any]
    checked: dict[str, Any]


def plan_update(record: ProviderRecord, data: ProviderUpdate) -> PlannedUpdate:
    sent = data.model_dump(exclude_unset=True)
    if any(sent.get(name) is None and name in sent for name in ("name", "model", "api_key")):
        raise InvalidInput({n: "must not be null" for n in ("name", "model", "api_key") if n in sent and sent[n] is None})
    if "endpoint" in sent and "api_key" not in sent:
        raise InvalidInput({"endpoint": "changing the endpoint requires sending api_key in the same request, "
                                        "so a stored key is never sent to a new host"})
    merged = {"endpoint": record.endpoint, "api_version": record.api_version, **sent}
    check_kind_fields(record.kind, merged)
    current = {"name": record.name, "model": record.model, "endpoint": record.endpoint,
               "api_version": record.api_version}
    changed = {k: v for k, v in sent.items() if k == "api_key" or current.get(k) != v}
    return PlannedUpdate(
        immediate={k: v for k, v in changed.items() if k not in CHECKED_FIELDS},
        checked={k: v for k, v in changed.items() if k in CHECKED_FIELDS},
    )


async def apply_update(ctx: ServiceContext, record: ProviderRecord, changes: dict[str, Any]) -> ProviderRecord:
    """Write `changes` (api_key as SecretStr) to the record; bump its version when a checked field moves."""
    if "endpoint" in changes:
        await _guard_endpoint(ctx, changes["endpoint"])
    for name, value in changes.items():
        if name == "api_key":
            record.key_ciphertext = ctx.vault.encrypt(record.org, str(record.id), value)
            record.key_last4 = last4(value)
        else:
            setattr(record, name, value)
    if any(name in CHECKED_FIELDS for name in changes):
        record.version += 1
    try:
        await record.save()
    except IntegrityError:
        raise Conflict(f"A provider named {changes.get('name')!r} already exists.", code="name_taken") from None
    return record


async def delete_record(principal: Principal, provider_id: str) -> None:
    record = await get_record(principal.org, provider_id)
    if await active_provider_id(principal.org) == record.id:
        await record_audit(principal, "delete", "rejected:provider_active", provider_id=record.id)
        raise Conflict("This provider is active. Activate another one or switch to the platform defaults "
                       "before deleting it.", code="provider_active")
    try:
        async with in_transaction():  # the deletion and its audit entry, or neither
            await record.delete()
            await record_audit(principal, "delete", "ok", provider_id=record.id, details={"name": record.name})
    except IntegrityError:  # activated between the check and the delete; the database refuses
        raise Conflict("This provider is active.", code="provider_active") from None


def target_of(ctx: ServiceContext, record: ProviderRecord, overrides: dict[str, Any] | None = None) -> ProviderTarget:
    """What a check of this record (with optional pending changes) must reach; decrypts the key."""
    values = {"model": record.model, "endpoint": record.endpoint, "api_version": record.api_version}
    values.update({k: v for k, v in (overrides or {}).items() if k in values})
    api_key = (overrides or {}).get("api_key") or ctx.vault.decrypt(record.org, str(record.id), record.key_ciphertext)
    return ProviderTarget(kind=record.kind, api_key=api_key, **values)


def record_view(record: ProviderRecord, active_id: uuid.UUID | None) -> dict:
    spec = kind_spec(record.kind)
    return {
        "id": str(record.id),
        "kind": record.kind,
        "name": record.name,
        "model": record.model,
        "endpoint": record.endpoint,
        "api_version": record.api_version,
        "key_set": bool(record.key_ciphertext),
        "key_last4": record.key_last4,
        "is_active": active_id == record.id,
        "health": {
            "status": record.health_status,
            "checked_at": record.health_checked_at.isoformat() if record.health_checked_at else None,
            "consecutive_failures": record.health_consecutive_failures,
            "last_error": record.health_last_error,
        },
        "supported_features": list(spec.supported_features),
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


class CheckRequired(Exception):
    """The update touches checked fields of the active record: it applies only after a live check."""

    def __init__(self, record: ProviderRecord, plan: PlannedUpdate) -> None:
        super().__init__("a live check must pass before this update applies")
        self.record = record
        self.plan = plan


async def update_record(ctx: ServiceContext, principal: Principal, record: ProviderRecord,
                        data: ProviderUpdate) -> ProviderRecord:
    """Apply an update; raises `CheckRequired` when the active record's key, model or address would change
    (the immediate part, such as a new name, is not applied either: the update is all or nothing)."""
    plan = plan_update(record, data)
    if plan.checked and await active_provider_id(record.org) == record.id:
        raise CheckRequired(record, plan)
    changes = {**plan.immediate, **plan.checked}
    async with in_transaction():  # the change and its audit entry, or neither
        if changes:
            record = await apply_update(ctx, record, changes)
        await record_audit(principal, "update", "ok", provider_id=record.id,
                           details={"fields": sorted(changes), "key_rotated": "api_key" in changes})
    return record
