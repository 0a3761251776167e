"""`switchboard`: the developer command line; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from switchboard_dev import dlq, generate, runner, tokens, traces
from switchboard_dev.command import Command

# One line per subcommand: a module with `add_parser(subparsers, name)` and `run(args)`.
COMMANDS: dict[str, Command] = {
    "dev": runner,
    "token": tokens,
    "dlq": dlq,
    "trace": traces,
    "generate": generate,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of COMMANDS."""
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard developer tools.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_parser(subparsers, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: the process arguments) and run the chosen subcommand."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].run(args)
