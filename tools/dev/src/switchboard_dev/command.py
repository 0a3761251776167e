"""The shape every `switchboard` subcommand module has, so the CLI can list them in one dict."""

from __future__ import annotations

import argparse
from typing import Protocol, TypeAlias

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Command(Protocol):
    """A subcommand module: it declares its parser and runs the parsed arguments."""

    def add_parser(self, subparsers: SubParsers, name: str) -> argparse.ArgumentParser:
        """Add the subcommand's parser, with its help and arguments, under `name`."""
        ...

    def run(self, args: argparse.Namespace) -> int:
        """Do the work and return the process exit code."""
        ...
