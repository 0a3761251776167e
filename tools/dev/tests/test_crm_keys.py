"""The dev runner's crm-sync key: base64 of 32 bytes, generated once, kept, owner-only."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from switchboard_dev.crm_keys import KEY_FILE, dev_credentials_key


def test_the_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / ".data"
    first = dev_credentials_key(data_dir)
    assert len(base64.b64decode(first)) == 32
    assert dev_credentials_key(data_dir) == first
    assert stat.S_IMODE((data_dir / KEY_FILE).stat().st_mode) == 0o600


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key\n")
    with pytest.raises(ValueError, match="delete it"):
        dev_credentials_key(tmp_path)
