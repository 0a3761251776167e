"""Signed test tokens, as the dev token command would print them."""

from __future__ import annotations

import time

import jwt

from ..auth import Role
from ..settings import DEV_JWT_SECRET


def make_token(
    *roles: Role | str,
    tenant: str | None = None,
    sub: str = "test-user",
    secret: str = DEV_JWT_SECRET,
    ttl_s: int = 3600,
    audience: str = "switchboard",
) -> str:
    """Return an HS256 bearer token with the given roles and tenant."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": sub,
        "roles": [str(r) for r in roles],
        "iat": now,
        "exp": now + ttl_s,
        "aud": audience,
    }
    if tenant is not None:
        claims["tenant"] = tenant
    return jwt.encode(claims, secret, algorithm="HS256")


def auth_header(
    *roles: Role | str, tenant: str | None = None, sub: str = "test-user"
) -> dict[str, str]:
    """`Authorization` header for a request made as the given roles and tenant."""
    return {"Authorization": f"Bearer {make_token(*roles, tenant=tenant, sub=sub)}"}
