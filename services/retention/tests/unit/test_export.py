"""The export: one JSON answer, or a ZIP of one JSON file per service (R-DSR-20)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from switchboard_retention.export import export_json, export_zip, wants_zip

REQUEST = {
    "_id": "d1",
    "right": "portability",
    "status": "completed",
    "received_at": datetime(2026, 5, 4, tzinfo=UTC),
    "due_at": "2026-06-04 00:00:00",  # as nx-27017 keeps a `$set` datetime
    "identifiers": [{"kind": "phone", "value": "+4915112345678"}],
    "participants": ["intake", "notes", "notify"],
}


def _fragment(service: str, part: int, parts: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "service": service,
        "part": part,
        "fragment": {
            "records": records,
            "counts": [{"category": "call_data", "collection": service, "count": 3}],
            "remarks": None,
            "completed_at": "2026-05-04T10:00:00+00:00",
            "parts": parts,
        },
    }


FRAGMENTS = [
    _fragment("notes", 2, 2, [{"data": {"id": "n3"}}]),
    _fragment("notes", 1, 2, [{"data": {"id": "n1"}}, {"data": {"id": "n2"}}]),
    _fragment("intake", 1, 1, [{"data": {"id": "c1"}}]),
]


def test_r_dsr_15_the_json_export_joins_each_services_parts_in_order() -> None:
    whole = export_json(REQUEST, FRAGMENTS)
    notes = next(s for s in whole["services"] if s["service"] == "notes")
    assert [r["data"]["id"] for r in notes["records"]] == ["n1", "n2", "n3"]
    assert whole["missing"] == ["notify"]
    assert whole["request"]["due_at"] == "2026-06-04T00:00:00+00:00"


def test_r_dsr_20_the_zip_holds_one_json_file_per_service() -> None:
    archive = zipfile.ZipFile(io.BytesIO(export_zip(REQUEST, FRAGMENTS)))
    assert sorted(archive.namelist()) == ["intake.json", "notes.json", "request.json"]
    notes = json.loads(archive.read("notes.json"))
    assert len(notes["records"]) == 3
    assert notes["counts"][0]["count"] == 3
    assert json.loads(archive.read("request.json"))["missing"] == ["notify"]


@pytest.mark.parametrize(
    ("accept", "zip_wanted"),
    [
        (None, False),
        ("", False),
        ("application/json", False),
        ("*/*", False),  # no preference: JSON
        ("application/zip", True),
        ("APPLICATION/ZIP", True),  # media types ignore case
        ("application/zip;q=0", False),  # refused outright
        ("application/json, application/zip;q=0.1", False),
        ("application/json;q=0.5, application/zip", True),
        ("application/zipx", False),
        ("*/*;q=0.1, application/zip", True),
        ("application/zip;q=0, */*", False),  # an exact type overrides the wildcard
        ("application/zip;q=abc", False),
    ],
)
def test_r_dsr_20_the_export_format_follows_the_accept_header(
    accept: str | None, zip_wanted: bool
) -> None:
    assert wants_zip(accept) is zip_wanted
