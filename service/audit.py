"""Writes and reads the audit log. Details are plain facts (field names, codes), never a key."""
from __future__ import annotations

from typing import Any

from models.audit import AuditEntry
from service.auth import Principal

MAX_PAGE = 200


async def record_audit(principal: Principal, action: str, outcome: str, *, org: str | None = None,
                       provider_id: Any = None, details: dict[str, Any] | None = None) -> None:
    await AuditEntry.create(
        org=org or principal.org,
        actor=principal.sub,
        actor_role=principal.role,
        action=action,
        provider_id=provider_id,
        outcome=outcome,
        details=details,
    )


async def list_audit(org: str, *, limit: int = 50, before: int | None = None) -> tuple[list[dict], int | None]:
    """Newest first; returns the page and the cursor for the next (older) page, or None at the end."""
    limit = max(1, min(limit, MAX_PAGE))
    query = AuditEntry.filter(org=org)
    if before is not None:
        query = query.filter(id__lt=before)
    entries = await query.order_by("-id").limit(limit + 1)
    page = entries[:limit]
    next_cursor = page[-1].id if len(entries) > limit else None
    return [audit_view(e) for e in page], next_cursor


def audit_view(entry: AuditEntry) -> dict:
    return {
        "id": entry.id,
        "actor": entry.actor,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "provider_id": str(entry.provider_id) if entry.provider_id else None,
        "outcome": entry.outcome,
        "details": entry.details or {},
        "created_at": entry.created_at.isoformat(),
    }
