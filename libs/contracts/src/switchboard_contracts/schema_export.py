"""Export every payload's JSON Schema to `libs/contracts/schemas/`, or check the files are current.

uv run python -m switchboard_contracts.schema_export            # write
uv run python -m switchboard_contracts.schema_export --check    # exit 1 if stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .compatibility import breaking_changes
from .envelope import EventPayload
from .registry import PAYLOAD_MODELS
from .samples import sample_payload

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_GLOB = "*.v*.json"


def schema_filename(model: type[EventPayload]) -> str:
    """Return the file a model's schema is exported to, e.g. `call.received.v1.json`."""
    return f"{model.topic}.v{model.version}.json"


def payload_schema(model: type[EventPayload]) -> dict[str, Any]:
    """Return the JSON Schema of one payload model, with its event type and an example."""
    # Validation mode: it describes what a consumer accepts (model_validate is what decode
    # runs), and compatibility asks whether new consumers still accept old messages.
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": DIALECT,
        "x-cloudevents-type": model.event_type(),
        "x-kafka-topic": model.topic,
        **schema,
        "examples": [sample_payload(model).model_dump(mode="json")],
    }


def export_schemas() -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of every registered payload model, keyed by CloudEvents type."""
    return {m.event_type(): payload_schema(m) for m in PAYLOAD_MODELS}


def render(schema: dict[str, Any]) -> str:
    """Serialise a schema stably: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered_files() -> dict[str, str]:
    """Return the content every schema file should have, by file name."""
    return {schema_filename(m): render(payload_schema(m)) for m in PAYLOAD_MODELS}


def stale_files(directory: Path) -> list[str]:
    """Describe every schema file in `directory` that is missing, outdated or has no model."""
    expected = rendered_files()
    problems = []
    for name, text in sorted(expected.items()):
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from the model")
    for path in sorted(directory.glob(_GLOB)):
        if path.name not in expected:
            problems.append(f"{path.name}: no model exports it any more")
    return problems


def breaking_changes_against(directory: Path) -> list[str]:
    """List breaking changes of the current models against the schema files in `directory`."""
    expected = {schema_filename(m): payload_schema(m) for m in PAYLOAD_MODELS}
    violations = []
    for path in sorted(directory.glob(_GLOB)):
        old = json.loads(path.read_text(encoding="utf-8"))
        if path.name not in expected:
            violations.append(f"{path.name}: event type removed")
            continue
        violations += [f"{path.name}: {v}" for v in breaking_changes(old, expected[path.name])]
    return violations


def write_schemas(directory: Path) -> list[str]:
    """Write every schema file into `directory`, delete retired ones; return what it did."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = rendered_files()
    changed = []
    for name, text in sorted(expected.items()):
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(f"wrote {name}")
    for path in sorted(directory.glob(_GLOB)):
        if path.name not in expected:
            path.unlink()
            changed.append(f"removed {path.name}")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the schema files, or with `--check` report stale ones and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m switchboard_contracts.schema_export")
    parser.add_argument("--check", action="store_true", help="fail if files differ from models")
    parser.add_argument(
        "--allow-breaking", action="store_true", help="overwrite even if consumers would break"
    )
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema folder")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files(args.dir)
        for problem in problems:
            print(f"stale: {problem}", file=sys.stderr)
        if problems:
            print(
                "re-export: uv run python -m switchboard_contracts.schema_export", file=sys.stderr
            )
        return 1 if problems else 0
    violations = breaking_changes_against(args.dir) if args.dir.exists() else []
    if violations and not args.allow_breaking:
        for violation in violations:
            print(f"breaking: {violation}", file=sys.stderr)
        print(
            "nothing written: add a new version instead (see libs/contracts/README.md), "
            "or pass --allow-breaking if no consumer can be affected",
            file=sys.stderr,
        )
        return 1
    for action in write_schemas(args.dir):
        print(action)
    return 0


if __name__ == "__main__":
    sys.exit(main())
