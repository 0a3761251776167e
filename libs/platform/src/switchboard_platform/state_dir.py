"""Small files in a replica's state directory (`SWITCHBOARD_STATE_DIR`) that outlive its
restarts: what a process needs to know about the one that ran before it (docs/decisions/0016).

Failing to read or write one is never fatal: the process then behaves as without a state
directory (a restart after a crash waits out what its predecessor held).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def read_state(path: Path) -> str | None:
    """The file's text, stripped; None if it is missing, empty or unreadable."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError:
        log.warning("could not read %s", path, exc_info=True)
        return None
    return text or None


def write_state(path: Path, text: str) -> bool:
    """Replace the file's text atomically (a crash mid-write leaves the old text)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.tmp")
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, path)
    except OSError:
        log.warning("could not write %s", path, exc_info=True)
        return False
    return True


def remove_state(path: Path) -> None:
    """Delete the file, if it is there."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove %s", path, exc_info=True)
