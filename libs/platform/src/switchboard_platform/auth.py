"""Bearer-JWT authentication, the claims we accept, and the one rule for tenant data.

Dev and tests verify HS256 with `SWITCHBOARD_JWT_SECRET`; production verifies RS256 against
`SWITCHBOARD_JWKS_URL`. The `roles` claim must be a non-empty list of known role names and
anything else is a 401; `aud` is checked always, `iss` when `SWITCHBOARD_JWT_ISSUER` is set,
and a token may live at most `SWITCHBOARD_JWT_MAX_LIFETIME_S`. A verified token is
remembered for a minute at most (`VerifiedTokens`), so the same token sent again skips the
signature check, but is refused from the moment full verification would refuse it (its
`exp` plus the clock leeway).

Tenant data is readable by an operator, or by a client of that tenant — by no other
combination of roles (`can_access_tenant`, used by every route through `tenant_of`).
A client's tenant always comes from its token, never from the request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import anyio.to_thread
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.types import Options
from pydantic import BaseModel, ConfigDict, Field

from .errors import NotFound, Unprocessable
from .logs import bind_tenant
from .settings import ServiceSettings

CLOCK_LEEWAY_S = 30


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
    tenant: str | None = Field(default=None, min_length=1, max_length=100)

    def has_any(self, roles: Sequence[Role]) -> bool:
        """True when the caller holds at least one of `roles`."""
        return bool(self.roles.intersection(roles))

    @property
    def is_operator(self) -> bool:
        """Staff of the answering service: may act for any tenant."""
        return Role.OPERATOR in self.roles

    def can_access_tenant(self, tenant_id: str) -> bool:
        """The one tenant rule: an operator, or a client of exactly that tenant.

        Agents capture calls; they read no tenant data, whatever other roles they hold.
        """
        if self.is_operator:
            return True
        return Role.CLIENT in self.roles and self.tenant == tenant_id


def _roles(claim: Any) -> frozenset[Role]:
    """The `roles` claim as roles; InvalidTokenError unless a list of known role names."""
    if not isinstance(claim, list) or not claim:
        raise jwt.InvalidTokenError("roles must be a non-empty list")
    known = {r.value for r in Role}
    if not all(isinstance(r, str) and r in known for r in claim):
        raise jwt.InvalidTokenError("roles holds an unknown role")
    return frozenset(Role(r) for r in claim)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The caller a verified token's claims describe; InvalidTokenError for odd claims."""
    sub, tenant = claims.get("sub"), claims.get("tenant")
    if not isinstance(sub, str) or not 1 <= len(sub) <= 200:
        raise jwt.InvalidTokenError("sub must be a string of 1-200 characters")
    if tenant is not None and (not isinstance(tenant, str) or not 1 <= len(tenant) <= 100):
        raise jwt.InvalidTokenError("tenant must be a string of 1-100 characters")
    roles = _roles(claims.get("roles"))
    if Role.CLIENT in roles and tenant is None:
        raise jwt.InvalidTokenError("a client token needs a tenant claim")
    return Principal(sub=sub, roles=roles, tenant=tenant)


VERIFIED_TOKENS = 1024
"""How many verified tokens a process remembers (the least recently used are forgotten)."""

VERIFIED_FOR_S = 60.0
"""How long a verified token is taken without checking its signature again: a signing key
withdrawn from the JWKS stops admitting its tokens at most this much later than uncached
(PyJWKClient itself keeps the key set for up to 300 s), and while the key server is down a
token verified within this time is still admitted."""


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires_at: int  # the token's `exp`, epoch seconds, as PyJWT reads it
    recheck_at: float  # monotonic


class VerifiedTokens:
    """Tokens whose signature and claims were verified, each with the principal they gave.

    Keyed by the whole token, signature included: a token differing in any byte is not
    in here. Only successes are stored, so a forged or expired token is checked in full
    every time. Safe across threads (a JWKS verification runs in a worker thread).
    """

    def __init__(self, size: int = VERIFIED_TOKENS, ttl_s: float = VERIFIED_FOR_S) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._entries: OrderedDict[str, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        """The principal of `token` if it was verified lately and has not expired since."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if (
                time.monotonic() >= entry.recheck_at
                or time.time() >= entry.expires_at + CLOCK_LEEWAY_S  # PyJWT's own bound
            ):
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry.principal

    def put(self, token: str, principal: Principal, expires_at: int) -> None:
        """Remember a token just verified, with its `exp`."""
        entry = _Verified(principal, expires_at, time.monotonic() + self._ttl_s)
        with self._lock:
            self._entries[token] = entry
            self._entries.move_to_end(token)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class TokenVerifier:
    """Verifies bearer tokens with the configured key material."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._max_lifetime_s = settings.jwt_max_lifetime_s
        self._jwks = (
            jwt.PyJWKClient(settings.jwks_url, timeout=int(max(1, settings.jwks_timeout_s)))
            if settings.jwks_url
            else None
        )
        self._secret = settings.jwt_secret.get_secret_value()
        self.verified = VerifiedTokens()

    @property
    def needs_key_fetch(self) -> bool:
        """True when verification may fetch keys over the network (JWKS)."""
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        """Return the token's principal, or raise `jwt.InvalidTokenError` (blocking on JWKS)."""
        return self.verified.get(token) or self.verify_in_full(token)

    def verify_in_full(self, token: str) -> Principal:
        """`verify` without asking the remembered tokens first; remembers a success."""
        principal, expires_at = self._verify_signed(token)
        self.verified.put(token, principal, expires_at)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, int]:
        required = ["sub", "exp", "aud", *(["iss"] if self._issuer else [])]
        options: Options = {"require": required}
        if self._jwks is not None:
            try:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError:
                raise  # our key server is unreachable: not the caller's fault
            except jwt.PyJWKClientError as exc:
                raise jwt.InvalidTokenError("no matching signing key") from exc
            algorithms = ["RS256"]
        else:
            key, algorithms = self._secret, ["HS256"]
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=self._audience,
            issuer=self._issuer,
            options=options,
            leeway=CLOCK_LEEWAY_S,
        )
        self._check_lifetime(claims)
        return principal_from_claims(claims), int(claims["exp"])  # as PyJWT compares it

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        expires = claims["exp"]
        issued = claims.get("iat")
        start = issued if isinstance(issued, int | float) else time.time()
        if expires - start > self._max_lifetime_s + CLOCK_LEEWAY_S:
            raise jwt.InvalidTokenError("token lifetime exceeds the allowed maximum")


_bearer = HTTPBearer(auto_error=False)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the verified caller, or 401 (503 if our key server is down)."""
    if credentials is None:
        raise _unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    token = credentials.credentials
    try:
        # verified lately: no signature check and no thread hop
        principal = verifier.verified.get(token)
        if principal is None and verifier.needs_key_fetch:  # a JWKS cache miss blocks
            principal = await anyio.to_thread.run_sync(verifier.verify_in_full, token)
        elif principal is None:  # HS256 takes microseconds: no thread hop
            principal = verifier.verify_in_full(token)
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


def require_roles(*roles: Role) -> Callable[..., Any]:
    """FastAPI dependency factory: the caller if it holds one of `roles`, else 403."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="role not permitted")
        return principal

    return check


def ensure_tenant_access(principal: Principal, tenant_id: str, what: str = "resource") -> None:
    """Raise NotFound (404) unless the caller may read `tenant_id`'s data."""
    if not principal.can_access_tenant(tenant_id):
        raise NotFound(f"{what} not found")


def tenant_of(principal: Principal, requested: str | None, *, field: str = "tenant_id") -> str:
    """The tenant a request acts for: a client's own, or the one an operator names.

    A client that names another tenant gets 404 (as for any other tenant's resource); an
    operator must name one (422 naming `field`).
    """
    if principal.is_operator:
        if requested is None:
            raise Unprocessable("operators must name the tenant", field=field)
        return requested
    own = principal.tenant
    if own is None or Role.CLIENT not in principal.roles:
        raise NotFound("tenant not found")
    if requested is not None and requested != own:
        raise NotFound("tenant not found")
    return own


AgentUser = Annotated[Principal, Depends(require_roles(Role.AGENT))]
ClientUser = Annotated[Principal, Depends(require_roles(Role.CLIENT))]
OperatorUser = Annotated[Principal, Depends(require_roles(Role.OPERATOR))]
TenantUser = Annotated[Principal, Depends(require_roles(Role.CLIENT, Role.OPERATOR))]
"""A caller that may read tenant data: a client (its own) or an operator (any)."""
