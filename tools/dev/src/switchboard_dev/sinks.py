"""Local stand-ins for notify's mail server and SMS gateway, so `switchboard dev` needs no account.

- the **mail sink** is an SMTP server (aiosmtpd) that keeps each message it accepts as an
  `.eml` file under `.data/mail/` and says where;
- the **SMS sink** is a small HTTP server speaking Twilio's Messages API (form-encoded `To`,
  `From`, `Body`; `201` with a `sid`) that appends each message to `.data/sms/messages.jsonl`.

Both run in threads of the dev runner (no extra processes to clean up) and are started only
when notify is not pointed elsewhere (`NOTIFY_SMTP_HOST`, `NOTIFY_SMS_URL`).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from switchboard_platform.embedded import free_port

HOST = "127.0.0.1"
DEV_SMS_ACCOUNT = "ACdevsink0000000000000000000000000"
DEV_SMS_FROM = "+4915100000000"
Say = Callable[[str], None]


def port_or_free(wanted: int, what: str, say: Say) -> int:
    """`wanted` if nothing listens there, else a free port (and say so)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, wanted))
        except OSError:
            port = free_port(HOST)
            say(f"{what} port {wanted} is in use; using {port}")
            return port
    return wanted


class MailSink:
    """aiosmtpd handler: every accepted message becomes `<time>-<n>.eml` in `folder`."""

    def __init__(self, folder: Path, say: Say) -> None:
        self.folder = folder
        self._say = say
        self._count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the message as it arrived; answer 250."""
        with self._lock:
            self._count += 1
            name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{self._count:04d}.eml"
        path = self.folder / name
        path.write_bytes(bytes(envelope.original_content or envelope.content))
        self._say(f"mail     received: {path}")
        return "250 OK kept by the dev mail sink"


def _sms_handler(folder: Path, say: Say) -> type[BaseHTTPRequestHandler]:
    log = folder / "messages.jsonl"
    lock = threading.Lock()

    class TwilioShape(BaseHTTPRequestHandler):
        """POST /2010-04-01/Accounts/{sid}/Messages.json, as Twilio answers it."""

        def do_POST(self) -> None:
            parts = self.path.strip("/").split("/")
            shaped = len(parts) == 4 and parts[0] == "2010-04-01" and parts[1] == "Accounts"
            if not shaped or parts[3] != "Messages.json":
                self._answer(404, {"code": 20404, "message": "not found", "status": 404})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if not form.get("To") or not form.get("Body"):
                self._answer(400, {"code": 21604, "message": "To and Body are required"})
                return
            sid = f"SM{uuid.uuid4().hex}"
            kept = {"sid": sid, "received_at": datetime.now(UTC).isoformat(), **form}
            with lock, log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(kept, ensure_ascii=False) + "\n")
            say(f"sms      received: {log} ({sid})")
            body = {"sid": sid, "account_sid": parts[2], "status": "queued", **form}
            self._answer(201, body)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the runner says what arrived."""

    return TwilioShape


@contextmanager
def mail_sink(folder: Path, port: int, say: Say) -> Iterator[int]:
    """An SMTP sink on `port` (no TLS on offer: nothing leaves the machine)."""
    from aiosmtpd.controller import Controller  # the dev tools' only use of it

    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(MailSink(folder, say), hostname=HOST, port=port, ready_timeout=10)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextmanager
def sms_sink(folder: Path, port: int, say: Say) -> Iterator[str]:
    """A Twilio-shaped SMS sink on `port`; yields its base URL."""
    folder.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((HOST, port), _sms_handler(folder, say))
    thread = threading.Thread(target=server.serve_forever, name="sms-sink", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def dev_sinks(
    env: Mapping[str, str], data_dir: Path, say: Say, *, smtp_port: int, sms_port: int
) -> Iterator[dict[str, str]]:
    """Start the sinks notify is not configured away from; yield the variables notify needs."""
    notify_env: dict[str, str] = {}
    with ExitStack() as stack:
        if env.get("NOTIFY_SMTP_HOST"):
            say("Mail     from NOTIFY_SMTP_HOST")
        else:
            folder = data_dir / "mail"
            try:
                port = stack.enter_context(
                    mail_sink(folder, port_or_free(smtp_port, "mail sink", say), say)
                )
            except ImportError:
                say("Mail     no sink: aiosmtpd is not installed (uv sync --all-packages)")
            else:
                notify_env |= {
                    "NOTIFY_SMTP_HOST": HOST,
                    "NOTIFY_SMTP_PORT": str(port),
                    "NOTIFY_SMTP_TLS": "none",
                }
                say(f"Mail     smtp://{HOST}:{port}  local sink, each message a file in {folder}")
        if env.get("NOTIFY_SMS_URL"):
            say("SMS      from NOTIFY_SMS_URL")
        else:
            folder = data_dir / "sms"
            url = stack.enter_context(
                sms_sink(folder, port_or_free(sms_port, "SMS sink", say), say)
            )
            notify_env |= {
                "NOTIFY_SMS_PROVIDER": "twilio",
                "NOTIFY_SMS_URL": url,
                "NOTIFY_SMS_USERNAME": DEV_SMS_ACCOUNT,
                "NOTIFY_SMS_PASSWORD": "dev-sink",  # the sink accepts anything
                "NOTIFY_SMS_FROM": DEV_SMS_FROM,
            }
            say(
                f"SMS      {url}  local Twilio-shaped sink, messages in {folder / 'messages.jsonl'}"
            )
        yield notify_env
