"""Check jobs (test, activate, update): their state lives here, org-scoped, not in a result backend."""
from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Job(Model):
    id = fields.UUIDField(primary_key=True)
    org = fields.CharField(max_length=128, db_index=True)
    type = fields.CharField(max_length=16)
    provider_id = fields.UUIDField(db_index=True)
    status = fields.CharField(max_length=16, default="queued", db_index=True)
    result = fields.JSONField(null=True)
    # What the job must apply if its check passes (PATCH of the active record); a new key is stored
    # encrypted, never in clear.
    changes = fields.JSONField(null=True)
    # The record version the job was created against; a different version at apply time means the
    # record changed under the check and the job fails with a conflict instead of applying.
    expected_version = fields.IntField()
    outcome = fields.CharField(max_length=64, null=True)
    requested_by = fields.CharField(max_length=256)
    requested_role = fields.CharField(max_length=16)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    deadline = fields.DatetimeField()

    class Meta:
        table = "jobs"
