"""Bearer-token verification: HS256 in dev and tests, RS256 against a real JWKS endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials
from jwt.algorithms import RSAAlgorithm

from switchboard_platform.auth import (
    CLOCK_LEEWAY_S,
    Principal,
    Role,
    TokenVerifier,
    VerifiedTokens,
    current_principal,
    tenant_of,
)
from switchboard_platform.errors import NotFound, Unprocessable
from switchboard_platform.settings import DEV_JWT_SECRET, ServiceSettings
from switchboard_platform.testing.tokens import make_token

STRONG = "s" * 40


ENCRYPTED: dict[str, object] = {
    "kafka_security_protocol": "SSL",
    "mongodb_url": "mongodb://db.example:27017/?tls=true",
}


def _production(**values: object) -> ServiceSettings:
    fields = {"environment": "production", "cursor_secret": STRONG, **ENCRYPTED, **values}
    return ServiceSettings(**fields)  # type: ignore[arg-type]


def _production_with_test_jwks(url: str, **values: object) -> ServiceSettings:
    """Production settings whose key server is the test's own, on plain http (allowed
    explicitly: production refuses an http JWKS URL otherwise)."""
    return _production(jwks_url=url, allow_plaintext=True, **values)


def _hs256(**claims: object) -> str:
    now = int(time.time())
    payload = {"sub": "u-1", "aud": "switchboard", "iat": now, "exp": now + 60, **claims}
    return jwt.encode(payload, DEV_JWT_SECRET, algorithm="HS256")


PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    """A real HTTP server publishing the public key as a JSON Web Key Set."""
    jwk = json.loads(RSAAlgorithm.to_jwk(PRIVATE_KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


def _rs256(key: rsa.RSAPrivateKey, **claims: object) -> str:
    now = int(time.time())
    payload = {"sub": "op-1", "roles": ["operator"], "aud": "switchboard", "exp": now + 60}
    return jwt.encode({**payload, **claims}, key, algorithm="RS256", headers={"kid": "k1"})


def test_production_tokens_are_verified_against_the_jwks_endpoint(jwks_url: str) -> None:
    verifier = TokenVerifier(_production_with_test_jwks(jwks_url))
    principal = verifier.verify(_rs256(PRIVATE_KEY, roles=["client"], tenant="t-1"))
    assert principal == Principal(sub="op-1", roles=frozenset({Role.CLIENT}), tenant="t-1")


def test_a_token_signed_with_another_key_or_hs256_is_refused_in_production(jwks_url: str) -> None:
    verifier = TokenVerifier(_production_with_test_jwks(jwks_url))
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(_rs256(OTHER_KEY))
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(make_token("operator"))  # HS256 with the dev secret


def test_expired_wrong_audience_and_tenantless_client_tokens_are_refused() -> None:
    verifier = TokenVerifier(ServiceSettings(environment="test"))
    with pytest.raises(jwt.ExpiredSignatureError):
        verifier.verify(make_token("operator", ttl_s=-60))  # past the 30 s leeway
    with pytest.raises(jwt.InvalidAudienceError):
        verifier.verify(make_token("operator", audience="someone-else"))
    with pytest.raises(jwt.InvalidTokenError, match="tenant"):
        verifier.verify(make_token("client"))
    assert verifier.verify(make_token("client", tenant="t-9")).tenant == "t-9"


def test_production_refuses_the_dev_secret() -> None:
    with pytest.raises(ValueError, match="production needs"):
        ServiceSettings(environment="production", cursor_secret=STRONG)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CURSOR_SECRET"):
        ServiceSettings(environment="production", jwt_secret=STRONG)  # type: ignore[arg-type]
    assert _production(jwt_secret=STRONG).environment == "production"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka_security_protocol": "PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_username": "svc",
                "kafka_sasl_password": "pw",
            },
            "KAFKA_SECURITY_PROTOCOL",
        ),
        ({"mongodb_url": "mongodb://db.example:27017"}, "MONGODB_URL"),
        ({"mongodb_url": "mongodb://db.example/?tls=false&ssl=true"}, "MONGODB_URL"),
        ({"mongodb_url": "mongodb+srv://cluster.example/?tls=false"}, "MONGODB_URL"),
        ({"jwks_url": "http://login.example/jwks.json"}, "SWITCHBOARD_JWKS_URL"),
    ],
)
def test_r_sec_1_production_refuses_unencrypted_transports(
    values: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        _production(jwt_secret=STRONG, **values)
    # where the network encrypts (a mesh with mutual TLS), the operator says so
    allowed = _production(jwt_secret=STRONG, allow_plaintext=True, **values)
    assert not allowed.refuses_plaintext
    # dev and test run on the plain embedded servers
    assert ServiceSettings(environment="dev", **values).environment == "dev"  # type: ignore[arg-type]


def test_a_short_jwt_secret_is_refused_in_every_environment() -> None:
    for environment in ("dev", "test", "production"):
        with pytest.raises(ValueError, match=r"SWITCHBOARD_JWT_SECRET (needs 32|of 32)"):
            ServiceSettings(environment=environment, jwt_secret="short", cursor_secret=STRONG)  # type: ignore[arg-type]


def test_encrypted_mongodb_urls_are_recognised() -> None:
    assert _production(jwt_secret=STRONG, mongodb_url="mongodb+srv://cluster.example/db")
    assert _production(jwt_secret=STRONG, mongodb_url="mongodb://a,b/db?replicaSet=rs0&TLS=True")
    assert _production(jwt_secret=STRONG, mongodb_url="mongodb://a/db?tlsCAFile=/etc/ca.pem")


def test_an_unconfigured_service_runs_as_production_and_refuses_the_dev_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fail closed: an image started without SWITCHBOARD_ENV accepts no dev-minted token."""
    monkeypatch.delenv("SWITCHBOARD_ENV", raising=False)
    monkeypatch.delenv("SWITCHBOARD_JWT_SECRET", raising=False)
    with pytest.raises(ValueError, match="production needs"):
        ServiceSettings()


@pytest.mark.parametrize(
    "roles",
    [
        {"operator": False},
        {"operator": True},
        None,
        5,
        "operator",
        [["operator"]],
        [],
        ["admin"],
        ["operator", 1],
        [None],
    ],
)
def test_r_sec_2_a_roles_claim_that_is_not_a_list_of_known_roles_is_refused(roles: object) -> None:
    verifier = TokenVerifier(ServiceSettings(environment="test"))
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(_hs256(roles=roles))


@pytest.mark.parametrize("tenant", [5, "", ["t-1"], {"id": "t-1"}])
def test_a_tenant_claim_that_is_not_a_string_is_refused(tenant: object) -> None:
    verifier = TokenVerifier(ServiceSettings(environment="test"))
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(_hs256(roles=["client"], tenant=tenant))


def test_r_sec_2_only_an_operator_or_a_client_of_that_tenant_reads_its_data() -> None:
    def who(*roles: Role, tenant: str | None = None) -> Principal:
        return Principal(sub="u", roles=frozenset(roles), tenant=tenant)

    assert who(Role.OPERATOR).can_access_tenant("a")
    assert who(Role.CLIENT, tenant="a").can_access_tenant("a")
    assert not who(Role.CLIENT, tenant="a").can_access_tenant("b")
    assert not who(Role.CLIENT, Role.AGENT, tenant="a").can_access_tenant("b")
    assert not who(Role.AGENT).can_access_tenant("a")
    assert not who(Role.AGENT, tenant="a").can_access_tenant("a")


def test_r_sec_2_the_tenant_a_request_acts_for_is_the_clients_own_or_an_operators_choice() -> None:
    client = Principal(sub="c", roles=frozenset({Role.CLIENT}), tenant="a")
    operator = Principal(sub="o", roles=frozenset({Role.OPERATOR}))
    assert tenant_of(client, None) == "a"
    assert tenant_of(client, "a") == "a"
    with pytest.raises(NotFound):
        tenant_of(client, "b")
    assert tenant_of(operator, "b") == "b"
    with pytest.raises(Unprocessable):
        tenant_of(operator, None)
    with pytest.raises(NotFound):
        tenant_of(Principal(sub="x", roles=frozenset({Role.AGENT}), tenant="a"), None)


def test_the_issuer_is_checked_when_configured() -> None:
    verifier = TokenVerifier(ServiceSettings(environment="test", jwt_issuer="https://idp.example"))
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(_hs256(roles=["operator"]))
    with pytest.raises(jwt.InvalidIssuerError):
        verifier.verify(_hs256(roles=["operator"], iss="https://evil.example"))
    assert verifier.verify(_hs256(roles=["operator"], iss="https://idp.example")).is_operator


def test_a_token_living_longer_than_allowed_is_refused() -> None:
    verifier = TokenVerifier(ServiceSettings(environment="test", jwt_max_lifetime_s=3600))
    now = int(time.time())
    with pytest.raises(jwt.InvalidTokenError, match="lifetime"):
        verifier.verify(_hs256(roles=["operator"], iat=now, exp=now + 30 * 24 * 3600))
    with pytest.raises(jwt.InvalidTokenError, match="lifetime"):  # no iat: measured from now
        verifier.verify(
            jwt.encode(
                {"sub": "u", "roles": ["operator"], "aud": "switchboard", "exp": now + 7200},
                DEV_JWT_SECRET,
                algorithm="HS256",
            )
        )
    assert verifier.verify(_hs256(roles=["operator"], iat=now, exp=now + 1800)).is_operator


def test_an_unanswering_key_server_fails_within_the_jwks_timeout() -> None:
    """A JWKS endpoint that accepts but never answers does not hold requests forever."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/jwks.json"
    try:
        verifier = TokenVerifier(_production_with_test_jwks(url, jwks_timeout_s=1.0))
        started = time.monotonic()
        with pytest.raises(jwt.PyJWKClientConnectionError):
            verifier.verify(_rs256(PRIVATE_KEY))
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_r_sec_2_a_token_verified_once_is_not_checked_again_but_a_changed_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = TokenVerifier(ServiceSettings(environment="test"))
    decoded: list[str] = []
    decode = jwt.decode

    def counting_decode(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting_decode)
    token = _hs256(roles=["client"], tenant="t-1")
    first, second = verifier.verify(token), verifier.verify(token)
    assert first == second == Principal(sub="u-1", roles=frozenset({Role.CLIENT}), tenant="t-1")
    assert decoded == [token]  # the second came from what the first verified

    head, payload, signature = token.split(".")
    forged_claims = jwt.utils.base64url_encode(
        json.dumps(
            {"sub": "u-1", "aud": "switchboard", "roles": ["operator"], "exp": 2**31}
        ).encode()
    ).decode()
    # a middle character: the last one's low bits are padding, ignored when decoded
    forged_signature = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    for forged in (f"{head}.{forged_claims}.{signature}", f"{head}.{payload}.{forged_signature}"):
        with pytest.raises(jwt.InvalidTokenError):
            verifier.verify(forged)
    assert len(verifier.verified) == 1  # failures are never remembered


def test_a_remembered_token_is_dropped_at_its_expiry_after_a_while_and_beyond_the_size() -> None:
    principal = Principal(sub="u", roles=frozenset({Role.AGENT}))
    tokens = VerifiedTokens(size=2, ttl_s=60)
    now = int(time.time())
    tokens.put("expired", principal, expires_at=now - CLOCK_LEEWAY_S)  # PyJWT: exp <= now - 30
    tokens.put("in-leeway", principal, expires_at=now - CLOCK_LEEWAY_S + 5)
    assert tokens.get("expired") is None
    assert tokens.get("in-leeway") == principal  # PyJWT too accepts it within the leeway

    tokens.put("a", principal, expires_at=now + 3600)
    tokens.put("b", principal, expires_at=now + 3600)
    assert tokens.get("a") == principal  # used: "b" is now the least recently used
    tokens.put("c", principal, expires_at=now + 3600)
    assert [tokens.get(t) is not None for t in ("a", "b", "c")] == [True, False, True]

    stale = VerifiedTokens(ttl_s=0)  # checked again once its time is up
    stale.put("t", principal, expires_at=now + 3600)
    assert stale.get("t") is None


async def test_a_remembered_token_is_taken_without_a_thread_hop(
    jwks_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(_production_with_test_jwks(jwks_url))
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(token_verifier=verifier)))
    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(function: Any, *args: Any) -> Any:
        hops.append(function)
        return await run_sync(function, *args)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=_rs256(PRIVATE_KEY))
    first = await current_principal(request, credentials)  # type: ignore[arg-type]
    assert len(hops) == 1  # JWKS: verified in a worker thread

    again = await current_principal(request, credentials)  # type: ignore[arg-type]
    assert again == first
    assert again.is_operator
    assert len(hops) == 1  # remembered: no second hop

    other = HTTPAuthorizationCredentials(scheme="Bearer", credentials=_rs256(OTHER_KEY))
    with pytest.raises(HTTPException) as refused:
        await current_principal(request, other)  # type: ignore[arg-type]
    assert refused.value.status_code == 401
    assert len(hops) == 2  # another token: verified in full
