"""The exported JSON Schemas match the models, and the models stay compatible with the release.

The baseline is the newest folder under `libs/contracts/released/<version>/`: the schemas as
they were released, kept in the repository (issue 8, item 9). Comparing with git `HEAD`
compared the schemas with themselves on a CI checkout; a released copy cannot drift with the
models, so a breaking change fails even after it was re-exported.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from switchboard_contracts.compatibility import breaking_changes
from switchboard_contracts.registry import PAYLOAD_MODELS
from switchboard_contracts.schema_export import (
    SCHEMA_DIR,
    export_schemas,
    main,
    payload_schema,
    render,
    schema_filename,
    stale_files,
)

RELEASED_DIR = SCHEMA_DIR.parent / "released"


def _version(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in folder.name.split("."))


def released_schemas() -> dict[str, dict[str, Any]]:
    """The schema files of the newest release, by name."""
    newest = max((d for d in RELEASED_DIR.iterdir() if d.is_dir()), key=_version)
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in newest.glob("*.json")}


def test_a_release_baseline_is_kept_with_every_event_type_it_had() -> None:
    released = released_schemas()
    assert len(released) >= 14, "the released baseline is missing or empty"


def test_the_baseline_check_fails_on_a_breaking_change() -> None:
    """Proof the comparison can fail: a required field removed from a released schema."""
    _name, old = sorted(released_schemas().items())[0]
    broken = json.loads(json.dumps(old))
    removed = broken["required"].pop()
    broken["properties"].pop(removed)
    assert breaking_changes(old, broken) != []


def test_exported_schema_files_match_the_models() -> None:
    """A model change without `python -m switchboard_contracts.schema_export` fails here."""
    assert stale_files(SCHEMA_DIR) == []


@pytest.mark.parametrize(
    ("name", "old"), [pytest.param(n, s, id=n) for n, s in sorted(released_schemas().items())]
)
def test_models_are_backward_compatible_with_the_release(name: str, old: dict[str, Any]) -> None:
    current = {schema_filename(m): payload_schema(m) for m in PAYLOAD_MODELS}
    assert name in current, f"{name}: event type removed; keep the model until consumers moved"
    assert breaking_changes(old, current[name]) == []


def test_export_is_keyed_by_event_type_and_carries_an_example() -> None:
    schemas = export_schemas()
    assert sorted(schemas) == sorted(m.event_type() for m in PAYLOAD_MODELS)
    for model in PAYLOAD_MODELS:
        schema = schemas[model.event_type()]
        assert schema["x-kafka-topic"] == model.topic
        model.model_validate(schema["examples"][0])


def test_rendering_is_stable_and_ends_with_a_newline() -> None:
    schema = payload_schema(PAYLOAD_MODELS[0])
    text = render(schema)
    assert text.endswith("}\n")
    assert render(json.loads(text)) == text


def test_check_passes_after_export_and_fails_after_edit(tmp_path: Path) -> None:
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert main(["--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0
    path = tmp_path / schema_filename(PAYLOAD_MODELS[0])
    path.write_text(
        path.read_text(encoding="utf-8").replace("Call Id", "Call ID"), encoding="utf-8"
    )
    assert main(["--check", "--dir", str(tmp_path)]) == 1


def test_check_reports_a_schema_file_no_model_exports(tmp_path: Path) -> None:
    main(["--dir", str(tmp_path)])
    (tmp_path / "call.received.v0.json").write_text("{}\n", encoding="utf-8")
    assert stale_files(tmp_path) == ["call.received.v0.json: no model exports it any more"]


def test_export_refuses_to_overwrite_a_breaking_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--dir", str(tmp_path)])
    path = tmp_path / schema_filename(PAYLOAD_MODELS[0])
    old = json.loads(path.read_text(encoding="utf-8"))
    old["properties"]["legacy"] = {"type": "string"}
    path.write_text(render(old), encoding="utf-8")
    assert main(["--dir", str(tmp_path)]) == 1
    assert "legacy: property removed" in capsys.readouterr().err
    assert "legacy" in path.read_text(encoding="utf-8")
    assert main(["--dir", str(tmp_path), "--allow-breaking"]) == 0
    assert "legacy" not in path.read_text(encoding="utf-8")
