"""Bearer-token verification: HS256 in dev and tests, RS256 against a real JWKS endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from switchboard_platform.auth import Principal, Role, TokenVerifier
from switchboard_platform.settings import ServiceSettings
from switchboard_platform.testing.tokens import make_token

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
    verifier = TokenVerifier(ServiceSettings(jwks_url=jwks_url, environment="production"))
    principal = verifier.verify(_rs256(PRIVATE_KEY, roles=["client"], tenant="t-1"))
    assert principal == Principal(sub="op-1", roles=frozenset({Role.CLIENT}), tenant="t-1")


def test_a_token_signed_with_another_key_or_hs256_is_refused_in_production(jwks_url: str) -> None:
    verifier = TokenVerifier(ServiceSettings(jwks_url=jwks_url, environment="production"))
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(_rs256(OTHER_KEY))
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(make_token("operator"))  # HS256 with the dev secret


def test_expired_wrong_audience_and_tenantless_client_tokens_are_refused() -> None:
    verifier = TokenVerifier(ServiceSettings())
    with pytest.raises(jwt.ExpiredSignatureError):
        verifier.verify(make_token("operator", ttl_s=-10))
    with pytest.raises(jwt.InvalidAudienceError):
        verifier.verify(make_token("operator", audience="someone-else"))
    with pytest.raises(jwt.InvalidTokenError, match="tenant"):
        verifier.verify(make_token("client"))
    assert verifier.verify(make_token("client", tenant="t-9")).tenant == "t-9"


def test_production_refuses_the_dev_secret() -> None:
    with pytest.raises(ValueError, match="production needs"):
        ServiceSettings(environment="production")
    strong = "x" * 40
    assert ServiceSettings(environment="production", jwt_secret=strong).environment == "production"
