"""Domain errors: a code from a closed set and a message for a person.

The service layer raises these; `api/errors.py` holds the one table that maps codes to HTTP statuses.
Messages never carry a secret.
"""
from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error the service shows to a caller."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class InvalidInput(ServiceError):
    """Field-level validation failure; `fields` maps each field name to its reason."""

    code = "validation_error"

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        super().__init__(message or "Some fields are invalid: " + ", ".join(sorted(fields)), fields=fields)
        self.fields = fields


class LimitExceeded(ServiceError):
    code = "limit_exceeded"


class RateLimited(ServiceError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class DependencyUnavailable(ServiceError):
    code = "dependency_unavailable"


class CredentialsUnavailable(ServiceError):
    """A stored key cannot be decrypted: it is never passed on, and nothing falls back."""

    code = "credentials_unavailable"
