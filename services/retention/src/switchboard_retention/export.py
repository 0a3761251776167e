"""The answer to an access or portability request: one JSON document, or a ZIP of JSON files.

The ZIP holds `request.json` and one `<service>.json` per service, each a structured,
machine-readable file (Art. 20: "structured, commonly used and machine-readable").
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

from switchboard_platform.mongo import Document, as_utc

ZIP = "application/zip"
JSON = "application/json"


def wants_zip(accept: str | None) -> bool:
    """Whether an `Accept` header prefers the ZIP to JSON (RFC 9110 §12.5.1: media types
    compared without case, `q` weights, `*/*` and `application/*` as wildcards that a type
    named exactly overrides); JSON when it prefers neither, or says nothing."""
    exact: dict[str, float] = {}
    wildcard = 0.0
    for item in (accept or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in (ZIP, JSON):
            exact[media] = max(exact.get(media, 0.0), q)
        elif media in ("*/*", "application/*"):
            wildcard = max(wildcard, q)
    zip_q, json_q = exact.get(ZIP, wildcard), exact.get(JSON, wildcard)
    return zip_q > 0 and zip_q > json_q


def _request(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "right": doc["right"],
        "status": doc["status"],
        "received_at": as_utc(doc["received_at"]).isoformat(),
        "due_at": as_utc(doc["due_at"]).isoformat(),
        "tenant_id": doc.get("tenant_id"),
        "identifiers": doc["identifiers"],
    }


def by_service(fragments: Sequence[Document]) -> dict[str, dict[str, Any]]:
    """Each service's records, counts and remarks, its parts joined in order."""
    services: dict[str, dict[str, Any]] = {}
    for stored in sorted(fragments, key=lambda f: (f["service"], f["part"])):
        fragment = stored["fragment"]
        entry = services.setdefault(
            stored["service"], {"service": stored["service"], "records": [], "counts": []}
        )
        entry["records"] += fragment.get("records") or []
        if stored["part"] == 1:
            entry["counts"] = fragment.get("counts") or []
            entry["remarks"] = fragment.get("remarks")
            entry["answered_at"] = fragment.get("completed_at")
    return services


def export_json(doc: Document, fragments: Sequence[Document]) -> dict[str, Any]:
    """The whole answer as one JSON document."""
    services = by_service(fragments)
    missing = [s for s in doc.get("participants") or [] if s not in services]
    return {"request": _request(doc), "services": list(services.values()), "missing": missing}


def export_zip(doc: Document, fragments: Sequence[Document]) -> bytes:
    """The answer as a ZIP: `request.json` and one JSON file per service."""
    whole = export_json(doc, fragments)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        request = {**whole["request"], "missing": whole["missing"]}
        archive.writestr("request.json", _dumps(request))
        for service in whole["services"]:
            archive.writestr(f"{service['service']}.json", _dumps(service))
    return buffer.getvalue()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
