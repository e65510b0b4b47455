"""Bearer-token authentication and role checks for handlers."""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.errors import ApiError
from api.keys import SETTINGS
from service.auth import ORG_ROLES, InvalidToken, Principal, verify_token

PRINCIPAL = web.RequestKey("principal", Principal)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "A bearer token is required.",)
    try:
        return verify_token(request.app[SETTINGS].jwt_key, token.strip())
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
