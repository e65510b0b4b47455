"""The audit log: who changed what in which org, and how it ended. Never holds a key."""
from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    id = fields.BigIntField(primary_key=True)
    org = fields.CharField(max_length=128)
    actor = fields.CharField(max_length=256)
    actor_role = fields.CharField(max_length=16)
    action = fields.CharField(max_length=32)
    provider_id = fields.UUIDField(null=True)
    outcome = fields.CharField(max_length=64)
    details = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_entries"
        indexes = (("org", "id"),)
