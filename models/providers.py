"""Provider records and the per-org active pointer."""
from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ProviderRecord(Model):
    id = fields.UUIDField(primary_key=True)
    org = fields.CharField(max_length=128, db_index=True)
    kind = fields.CharField(max_length=32)
    name = fields.CharField(max_length=100)
    model = fields.CharField(max_length=200)
    endpoint = fields.CharField(max_length=2048, null=True)
    api_version = fields.CharField(max_length=64, null=True)
    # Fernet token of a JSON envelope binding the key to (org, record id); see service.crypto.
    key_ciphertext = fields.TextField()
    key_last4 = fields.CharField(max_length=4)
    health_status = fields.CharField(max_length=16, default="unknown")
    health_checked_at = fields.DatetimeField(null=True)
    health_consecutive_failures = fields.IntField(default=0)
    health_last_error = fields.JSONField(null=True)
    # Bumped on every change of what a check depends on (key, model, endpoint, api_version), so an
    # activation can tell that the record it checked is still the record it activates.
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "provider_records"
        unique_together = (("org", "name"),)


class ActiveProvider(Model):
    """One row per org with an active provider: the primary key makes "exactly one" a database fact.

    The provider foreign key is RESTRICT, so the database itself refuses to delete an active record.
    """

    org = fields.CharField(max_length=128, primary_key=True)
    provider: fields.OneToOneRelation[ProviderRecord] = fields.OneToOneField(
        "models.ProviderRecord", related_name="active_for", on_delete=fields.RESTRICT
    )
    checked_version = fields.IntField()
    activated_at = fields.DatetimeField()
    activated_by = fields.CharField(max_length=256)

    class Meta:
        table = "active_providers"
