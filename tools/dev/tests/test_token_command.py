"""`switchboard token` prints tokens the services accept, with the documented claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from switchboard_dev.cli import main
from switchboard_platform.auth import Role, TokenVerifier
from switchboard_platform.settings import DEV_JWT_SECRET, ServiceSettings

SECRET = "a-test-secret-that-is-long-enough-0123456789"


def _decode(token: str, secret: str = SECRET) -> dict[str, object]:
    return jwt.decode(
        token, secret, algorithms=["HS256"], audience="switchboard", issuer="switchboard-dev"
    )


def test_token_round_trips_with_its_claims(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_JWT_SECRET", SECRET)
    argv = ["token", "--role", "client", "--tenant", "acme", "--sub", "alice", "--ttl", "120"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    claims = _decode(out.strip())
    assert claims["sub"] == "alice"
    assert claims["roles"] == ["client"]
    assert claims["tenant"] == "acme"
    assert claims["iss"] == "switchboard-dev"
    assert claims["aud"] == "switchboard"
    assert isinstance(claims["iat"], int)
    assert claims["exp"] == claims["iat"] + 120
    assert err == ""


def test_client_token_without_tenant_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_JWT_SECRET", SECRET)
    assert main(["token", "--role", "client"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "a client token needs --tenant" in err


def test_agent_token_needs_no_tenant_and_may_hold_several_roles(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_JWT_SECRET", SECRET)
    assert main(["token", "--role", "agent", "--role", "operator"]) == 0
    claims = _decode(capsys.readouterr().out.strip())
    assert claims["roles"] == ["agent", "operator"]
    assert claims["sub"] == "dev-agent"
    assert "tenant" not in claims


def test_default_secret_signs_and_warns_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWITCHBOARD_JWT_SECRET", raising=False)
    assert main(["token", "--role", "operator"]) == 0
    out, err = capsys.readouterr()
    assert _decode(out.strip(), DEV_JWT_SECRET)["roles"] == ["operator"]
    assert "dev default secret" in err


def test_platform_verifier_accepts_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_JWT_SECRET", SECRET)
    assert main(["token", "--role", "client", "--tenant", "acme"]) == 0
    verifier = TokenVerifier(ServiceSettings(environment="test", jwt_secret=SecretStr(SECRET)))
    principal = verifier.verify(capsys.readouterr().out.strip())
    assert principal.roles == frozenset({Role.CLIENT})
    assert principal.tenant == "acme"


def test_console_script_prints_a_token() -> None:
    script = Path(sys.executable).with_name("switchboard")
    result = subprocess.run(
        [str(script), "token", "--role", "agent"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "SWITCHBOARD_JWT_SECRET": SECRET},
    )
    assert _decode(result.stdout.strip())["roles"] == ["agent"]
