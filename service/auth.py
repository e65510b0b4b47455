"""Bearer tokens: HS256 JWTs with `sub`, `role`, `exp` and, for org roles, `org`."""
from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ORG_ROLES = frozenset({"owner", "admin", "member"})
MANAGER_ROLES = frozenset({"owner", "admin"})
GLOBAL_ROLES = frozenset({"service", "ops"})
ROLES = ORG_ROLES | GLOBAL_ROLES
DEFAULT_TTL = 3600


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or names an unknown role."""


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    role: str
    org: str | None

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGER_ROLES


def issue_token(secret: str, *, role: str, org: str | None = None, sub: str | None = None,
                ttl: int = DEFAULT_TTL) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(sorted(ROLES))}")
    if role in ORG_ROLES and not org:
        raise ValueError(f"role {role} needs an org")
    if role in GLOBAL_ROLES and org:
        raise ValueError(f"role {role} takes no org")
    claims = {"sub": sub or f"{role}@{org or 'platform'}", "role": role, "exp": int(time.time()) + ttl}
    if org:
        claims["org"] = org
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(_reason(exc)) from None
    except (UnicodeError, ValueError):  # header bytes that are not text (aiohttp keeps them as surrogates)
        raise InvalidToken("the token is malformed") from None
    role, org, sub = claims.get("role"), claims.get("org"), claims.get("sub")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise InvalidToken("the token names no known role")
    if role in ORG_ROLES and (not isinstance(org, str) or not org or len(org) > 128):
        raise InvalidToken("an org role needs an org claim")
    return Principal(sub=sub[:256], role=role, org=org if role in ORG_ROLES else None)


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature is not valid"
    return "the token is malformed"
