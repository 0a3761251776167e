"""The dev runner's crm-sync credentials key: made once into `.data/`, the same on every run.

crm-sync seals connector credentials with `CRM_SYNC_CREDENTIALS_KEY` (base64 of 32 bytes).
In dev the key lives beside the embedded database's data, so credentials stored in one
`make dev` still open in the next; it is never the key of any other environment.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

KEY_FILE = "crm-sync.key"
KEY_BYTES = 32


def dev_credentials_key(data_dir: Path) -> str:
    """The key in `<data_dir>/crm-sync.key`, generated (owner-only) on first use."""
    path = data_dir / KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        try:
            if len(base64.b64decode(key, validate=True)) == KEY_BYTES:
                return key
        except (binascii.Error, ValueError):
            pass
        raise ValueError(f"{path} does not hold base64 of {KEY_BYTES} bytes; delete it")
    data_dir.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key
