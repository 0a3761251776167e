"""Bearer-JWT authentication and role checks (DESIGN.md, "Security").

Dev and tests verify HS256 with `SWITCHBOARD_JWT_SECRET`; production verifies RS256 against
`SWITCHBOARD_JWKS_URL`. A client's tenant always comes from the token, never the request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.types import Options
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import NotFound
from .logs import bind_tenant
from .settings import ServiceSettings


class Role(StrEnum):
    """What a caller may do: capture calls, read its own tenant's data, or operate the service."""

    AGENT = "agent"
    CLIENT = "client"
    OPERATOR = "operator"


class Principal(BaseModel):
    """The authenticated caller, as the verified token describes it."""

    model_config = ConfigDict(frozen=True)

    sub: str = Field(min_length=1, max_length=200)
    roles: frozenset[Role]
    tenant: str | None = Field(default=None, max_length=100)

    def has_any(self, roles: Sequence[Role]) -> bool:
        """True when the caller holds at least one of `roles`."""
        return bool(self.roles.intersection(roles))

    def can_access_tenant(self, tenant_id: str) -> bool:
        """Operators and agents act across tenants; a client only inside its own."""
        if Role.OPERATOR in self.roles or Role.AGENT in self.roles:
            return True
        return self.tenant == tenant_id


class TokenVerifier:
    """Verifies bearer tokens with the configured key material."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._audience = settings.jwt_audience
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None
        self._secret = settings.jwt_secret.get_secret_value()

    def verify(self, token: str) -> Principal:
        """Return the token's principal, or raise `jwt.InvalidTokenError`."""
        options: Options = {"require": ["sub", "exp"]}
        claims: dict[str, Any]
        if self._jwks is not None:
            try:
                key = self._jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError:
                raise  # our key server is unreachable: not the caller's fault
            except jwt.PyJWKClientError as exc:
                raise jwt.InvalidTokenError(f"no matching signing key: {exc}") from exc
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=self._audience, options=options
            )
        else:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], audience=self._audience, options=options
            )
        try:
            principal = Principal(
                sub=claims["sub"],
                roles=frozenset(claims.get("roles", [])),
                tenant=claims.get("tenant"),
            )
        except ValidationError as exc:
            raise jwt.InvalidTokenError(f"bad claims: {exc.error_count()} error(s)") from exc
        if Role.CLIENT in principal.roles and not principal.tenant:
            raise jwt.InvalidTokenError("a client token needs a tenant claim")
        return principal


_bearer = HTTPBearer(auto_error=False)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the verified caller, or 401."""
    if credentials is None:
        raise _unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(credentials.credentials)
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.PyJWKClientConnectionError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="token keys unavailable"
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("invalid token") from exc
    bind_tenant(principal.tenant)
    return principal


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """FastAPI dependency factory: the caller if it holds one of `roles`, else 403."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="role not permitted")
        return principal

    return check


def ensure_tenant_access(principal: Principal, tenant_id: str, what: str = "resource") -> None:
    """Raise NotFound (404) when a client reaches for another tenant's resource."""
    if not principal.can_access_tenant(tenant_id):
        raise NotFound(f"{what} not found")


AgentUser = Annotated[Principal, Depends(require_roles(Role.AGENT))]
ClientUser = Annotated[Principal, Depends(require_roles(Role.CLIENT))]
OperatorUser = Annotated[Principal, Depends(require_roles(Role.OPERATOR))]
