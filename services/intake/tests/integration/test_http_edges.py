"""Issue 8, item 7, over a real socket to a real intake process (uvicorn as the image runs it).

Oversized chunked bodies are refused while they arrive, huge headers are refused before they
are parsed, slow or half-sent requests lose their connection, a trailing slash does not
redirect (and so never echoes the Host header), and answers are marked no-store/nosniff.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchboard_platform.testing.processes import ServiceProcess
from switchboard_platform.testing.pytest_plugin import ServerEndpoints
from switchboard_platform.testing.tokens import auth_header

READ_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def intake_process(
    servers: ServerEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        "intake",
        "switchboard_intake",
        kafka_bootstrap_servers=servers.kafka_bootstrap_servers,
        mongodb_url=servers.mongodb_url,
        log_dir=Path(tmp_path_factory.mktemp("edges")),
        database="intake_edges",
        extra_env={"SWITCHBOARD_REQUEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S)},
    )
    with process:
        yield process


def _connect(process: ServiceProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", process.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_a_chunked_body_is_refused_once_it_passes_the_limit_not_after_reading_it_all(
    intake_process: ServiceProcess,
) -> None:
    token = auth_header("operator")["Authorization"]
    sock = _connect(intake_process)
    head = (
        f"POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode())
    chunk = b"x" * 16384
    sent = 0
    refused_early = False
    for _ in range(8 * 1024):  # up to 128 MiB offered
        try:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            refused_early = True
            break
        sent += len(chunk)
        sock.settimeout(0.001)
        try:
            if sock.recv(1, socket.MSG_PEEK):
                refused_early = True
                break
        except (BlockingIOError, TimeoutError):
            pass
        finally:
            sock.settimeout(10)
    answer = _read_all(sock)
    sock.close()
    assert refused_early, "the server read the whole body"
    assert sent < 2 * 1024 * 1024, f"{sent} bytes were taken before the refusal"
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_two_megabyte_authorization_header_is_a_431_before_it_is_parsed(
    intake_process: ServiceProcess,
) -> None:
    sock = _connect(intake_process)
    huge = "Bearer " + "a" * (2 * 1024 * 1024)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(
            f"GET /v1/tenants/x HTTP/1.1\r\nHost: x\r\nAuthorization: {huge}\r\n\r\n".encode()
        )
    answer = _read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431")
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert b"cache-control: no-store" in head
    assert b"x-content-type-options: nosniff" in head


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v1/tenants/x HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n",
        b"GET /v1/tenants/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["not http", "space in a header name", "two lengths"],
)
def test_a_request_the_parser_cannot_read_is_a_json_400_marked_like_every_answer(
    intake_process: ServiceProcess, request_bytes: bytes
) -> None:
    sock = _connect(intake_process)
    sock.sendall(request_bytes)
    answer = _read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"content-type: application/json" in head.lower()
    assert b"cache-control: no-store" in head.lower()
    assert b"x-content-type-options: nosniff" in head.lower()
    assert json.loads(body) == {"detail": "the request is not valid HTTP/1.1"}
    assert httpx.get(f"{intake_process.url}/healthz").status_code == 200  # it serves on


def test_a_request_whose_headers_never_finish_loses_its_connection(
    intake_process: ServiceProcess,
) -> None:
    sock = _connect(intake_process)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    started = time.monotonic()
    answer = _read_all(sock)
    waited = time.monotonic() - started
    sock.close()
    assert answer == b""
    assert waited < READ_TIMEOUT_S + 3


def test_a_half_sent_body_is_a_408_and_the_connection_closes(
    intake_process: ServiceProcess,
) -> None:
    token = auth_header("operator")["Authorization"]
    sock = _connect(intake_process)
    sock.sendall(
        f"POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":'.encode()
    )
    started = time.monotonic()
    answer = _read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < READ_TIMEOUT_S + 3


def test_a_trailing_slash_is_not_redirected_and_answers_are_not_cached_or_sniffed(
    intake_process: ServiceProcess,
) -> None:
    reply = httpx.get(
        f"{intake_process.url}/v1/tenants/some-id/",
        headers={**auth_header("operator"), "Host": "evil.example"},
        follow_redirects=False,
    )
    assert reply.status_code == 404
    assert "location" not in reply.headers
    ok = httpx.get(f"{intake_process.url}/v1/tenants/nope", headers=auth_header("operator"))
    for answer in (reply, ok):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "server" not in ok.headers
