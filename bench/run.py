"""Benchmark entry point: `python -m bench.run` or `python bench/run.py` (see README)."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    """Make the repository root importable when run as a script, then run the CLI."""
    if not __package__:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
