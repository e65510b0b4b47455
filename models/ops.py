"""Operator-facing state: alerts and the liveness heartbeats of workers and the scheduler."""
from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Alert(Model):
    id = fields.UUIDField(primary_key=True)
    kind = fields.CharField(max_length=32)
    status = fields.CharField(max_length=16, default="open")
    org = fields.CharField(max_length=128, null=True)
    provider_id = fields.UUIDField(null=True)
    message = fields.TextField()
    # One open alert per incident: the open alert of a (kind, subject) pair carries this key; resolved
    # ones set it NULL, and a unique index makes a second open alert for the same incident impossible.
    open_key = fields.CharField(max_length=300, null=True, unique=True)
    opened_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True)

    class Meta:
        table = "alerts"
        indexes = (("status", "opened_at"), ("org", "opened_at"))


class Heartbeat(Model):
    """Last time each component (`worker`, `scheduler`) was heard from."""

    component = fields.CharField(max_length=32, primary_key=True)
    seen_at = fields.DatetimeField()
    detail = fields.CharField(max_length=256, null=True)

    class Meta:
        table = "heartbeats"
