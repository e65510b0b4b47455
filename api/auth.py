"""Bearer-token authentication and role checks for handlers.

Verified tokens are remembered briefly by their exact string (the hot path of the AI services sends the
same token on every call): a hit skips the HMAC and claim checks but never the expiry, and a token is kept
at most `VERIFIED_TTL` seconds. Only tokens that verified are kept; a refused token is checked every time.
"""
from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.errors import ApiError
from api.keys import SETTINGS
from service.auth import ORG_ROLES, InvalidToken, Principal, verify_token

PRINCIPAL = web.RequestKey("principal", Principal)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VERIFIED_TTL = 60.0
VERIFIED_MAX = 10_000
# token -> (secret it verified under, principal, drop after this wall-clock time)
_verified: dict[str, tuple[str, Principal, float]] = {}


def _unverified_exp(token: str) -> float:
    """The `exp` claim of a token whose signature was just verified."""
    payload = token.split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


def _verify(secret: str, token: str) -> Principal:
    now = time.time()
    hit = _verified.get(token)
    if hit is not None and hit[0] == secret and now < hit[2]:
        return hit[1]
    principal = verify_token(secret, token)
    if len(_verified) >= VERIFIED_MAX:
        for stale in [t for t, (_, _, until) in _verified.items() if until <= now]:
            del _verified[stale]
        if len(_verified) >= VERIFIED_MAX:
            _verified.clear()
    _verified[token] = (secret, principal, min(_unverified_exp(token), now + VERIFIED_TTL))
    return principal


def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "A bearer token is required.",)
    try:
        return _verify(request.app[SETTINGS].jwt_key, token)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", f"The bearer token was refused: {exc}.") from None


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """Let the handler run only for a valid token of one of `roles`; the principal is in `request[PRINCIPAL]`."""
    allowed = frozenset(roles)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = authenticate(request)
            if principal.role not in allowed:
                raise ApiError(403, "forbidden", f"The role {principal.role} may not do this.")
            request[PRINCIPAL] = principal
            return await handler(request)

        guarded.llmp_roles = tuple(sorted(allowed))  # read by the OpenAPI builder
        return guarded

    return decorate


ANY_ORG_ROLE = tuple(sorted(ORG_ROLES))
MANAGERS = ("admin", "owner")
ANY_ROLE = (*ANY_ORG_ROLE, "ops", "service")
