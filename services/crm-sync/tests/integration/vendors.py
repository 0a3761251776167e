"""Real HTTP servers speaking the CRMs' shapes (VENDORS.md), run by the tests on 127.0.0.1.

Each fake keeps what it was sent and answers as the vendor documents it, error bodies
and rate limits included; `answer_once` scripts an answer that replaces the real one for
the next request it matches.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from switchboard_platform.embedded import free_port

Answer = tuple[int, dict[str, str], Any]


@dataclass(frozen=True)
class Scripted:
    """An answer for the next request with this method whose path and body hold the parts."""

    method: str
    path_part: str
    body_part: str
    answer: Answer


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn in a background thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@dataclass
class Seen:
    """One request a fake received."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    at: float


@dataclass
class Fake:
    """What every fake vendor shares: valid tokens, a request log, scripted answers."""

    tokens: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))

    def next_id(self) -> str:
        return str(next(self.ids))

    async def record(self, request: Request) -> Seen:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        seen = Seen(
            request.method,
            request.url.path,
            {k.lower(): v for k, v in request.headers.items()},
            dict(request.query_params),
            body,
            time.monotonic(),
        )
        self.seen.append(seen)
        return seen

    def answer_once(
        self, method: str, path_part: str, answer: Answer, *, body_part: str = ""
    ) -> None:
        """Answer the next `method` request whose path holds `path_part` and whose body
        holds `body_part` (e.g. a caller's number: other tests share the fake) with `answer`."""
        self.script.append(Scripted(method, path_part, body_part, answer))

    def scripted(self, seen: Seen) -> Response | None:
        body = json.dumps(seen.body)
        for entry in self.script:
            if (
                entry.method == seen.method
                and entry.path_part in seen.path
                and entry.body_part in body
            ):
                self.script.remove(entry)
                status, headers, content = entry.answer
                if content is None:
                    return Response(status_code=status, headers=headers)
                return JSONResponse(content, status_code=status, headers=headers)
        return None

    def requests(self, method: str, path_part: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and path_part in s.path]


# --- HubSpot -----------------------------------------------------------------------------

HUBSPOT_LIMIT_HEADERS = {
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "180",
}


@dataclass
class FakeHubSpot(Fake):
    """HubSpot CRM v3: contacts (search, create), calls and notes with associations."""

    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"calls": {}, "notes": {}}
    )

    def app(self) -> FastAPI:
        app = FastAPI()

        def error(status: int, category: str, message: str) -> JSONResponse:
            body = {
                "status": "error",
                "message": message,
                "correlationId": str(uuid.uuid4()),
                "category": category,
            }
            return JSONResponse(body, status_code=status, headers=HUBSPOT_LIMIT_HEADERS)

        async def guard(request: Request) -> tuple[Seen, Response | None]:
            seen = await self.record(request)
            scripted = self.scripted(seen)
            if scripted is not None:
                return seen, scripted
            auth = seen.headers.get("authorization", "")
            if auth.removeprefix("Bearer ") not in self.tokens:
                return seen, error(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                )
            return seen, None

        def matches(props: dict[str, Any], body: dict[str, Any]) -> bool:
            for group in body.get("filterGroups", []):
                if all(
                    f["operator"] == "EQ" and str(props.get(f["propertyName"])) == str(f["value"])
                    for f in group["filters"]
                ):
                    return True
            return False

        @app.post("/crm/v3/objects/{objects}/search")
        async def search(objects: str, request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            pool = self.contacts if objects == "contacts" else self.objects.get(objects, {})
            hits = [
                {"id": i, "properties": (o.get("properties", o))}
                for i, o in pool.items()
                if matches(o.get("properties", o), seen.body)
            ]
            limit = int(seen.body.get("limit", 10))
            return JSONResponse(
                {"total": len(hits), "results": hits[:limit]}, headers=HUBSPOT_LIMIT_HEADERS
            )

        @app.post("/crm/v3/objects/contacts")
        async def create_contact(request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            props = seen.body["properties"]
            for cid, existing in self.contacts.items():
                if props.get("email") and existing.get("email") == props.get("email"):
                    return error(409, "CONFLICT", f"Contact already exists. Existing ID: {cid}")
            cid = self.next_id()
            self.contacts[cid] = dict(props)
            return JSONResponse(
                {"id": cid, "properties": props, "archived": False},
                status_code=201,
                headers=HUBSPOT_LIMIT_HEADERS,
            )

        @app.get("/crm/v3/objects/contacts")
        async def list_contacts(request: Request) -> Response:
            _, refused = await guard(request)
            if refused:
                return refused
            return JSONResponse({"results": []}, headers=HUBSPOT_LIMIT_HEADERS)

        @app.post("/crm/v3/objects/{objects}")
        async def create(objects: str, request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            props = seen.body.get("properties", {})
            if "hs_timestamp" not in props:
                return error(400, "VALIDATION_ERROR", "Property values were not valid")
            expected = {"calls": 194, "notes": 202}[objects]
            for assoc in seen.body.get("associations", []):
                if assoc["to"]["id"] not in self.contacts:
                    return error(400, "VALIDATION_ERROR", "association target does not exist")
                if assoc["types"][0]["associationTypeId"] != expected:
                    return error(400, "VALIDATION_ERROR", "invalid association type")
            oid = self.next_id()
            self.objects[objects][oid] = {
                "properties": props,
                "associations": seen.body.get("associations", []),
            }
            return JSONResponse(
                {"id": oid, "properties": props}, status_code=201, headers=HUBSPOT_LIMIT_HEADERS
            )

        @app.delete("/crm/v3/objects/{objects}/{oid}")
        async def delete(objects: str, oid: str, request: Request) -> Response:
            _, refused = await guard(request)
            if refused:
                return refused
            if self.objects.get(objects, {}).pop(oid, None) is None:
                return error(404, "OBJECT_NOT_FOUND", "resource not found")
            return Response(status_code=204)

        return app


# --- Salesforce ------------------------------------------------------------------------

SF = "/services/data/v62.0"


@dataclass
class FakeSalesforce(Fake):
    """Salesforce REST: Contact upsert by external id, Task create / lookup / delete."""

    contact_key: str = "Switchboard_Caller_Phone__c"
    task_key: str = "Switchboard_Note_Id__c"
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    update_answers_204: bool = True

    def _id(self, prefix: str) -> str:
        return f"{prefix}{int(self.next_id()):015d}"

    def app(self) -> FastAPI:
        app = FastAPI()

        def errors(status: int, code: str, message: str) -> JSONResponse:
            return JSONResponse(
                [{"message": message, "errorCode": code, "fields": []}], status_code=status
            )

        async def guard(request: Request) -> tuple[Seen, Response | None]:
            seen = await self.record(request)
            scripted = self.scripted(seen)
            if scripted is not None:
                return seen, scripted
            if seen.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
                return seen, errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
            return seen, None

        def by_key(pool: dict[str, dict[str, Any]], key: str, value: str) -> str | None:
            return next((i for i, r in pool.items() if r.get(key) == value), None)

        @app.patch(SF + "/sobjects/Contact/{key}/{value}")
        async def upsert(key: str, value: str, request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            if key != self.contact_key:
                return errors(404, "NOT_FOUND", f"Provided external ID field does not exist: {key}")
            if key in seen.body:
                return errors(400, "INVALID_FIELD", "external id field in the body")
            if "LastName" not in seen.body:
                return errors(400, "REQUIRED_FIELD_MISSING", "Required fields are missing")
            existing = by_key(self.contacts, key, value)
            if existing is None:
                cid = self._id("003")
                self.contacts[cid] = {**seen.body, key: value}
                return JSONResponse(
                    {"id": cid, "success": True, "errors": [], "created": True}, status_code=201
                )
            self.contacts[existing].update(seen.body)
            if self.update_answers_204:
                return Response(status_code=204)
            return JSONResponse({"id": existing, "success": True, "errors": [], "created": False})

        @app.get(SF + "/sobjects/{sobject}/{key}/{value}")
        async def by_external_id(sobject: str, key: str, value: str, request: Request) -> Response:
            _, refused = await guard(request)
            if refused:
                return refused
            pool = self.contacts if sobject == "Contact" else self.tasks
            found = by_key(pool, key, value)
            if found is None:
                return errors(404, "NOT_FOUND", "The requested resource does not exist")
            return JSONResponse({"attributes": {"type": sobject}, "Id": found})

        @app.post(SF + "/sobjects/Task/")
        async def create_task(request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            body = seen.body
            if body.get("TaskSubtype") != "Call" or not body.get("WhoId"):
                return errors(400, "FIELD_INTEGRITY_EXCEPTION", "bad task")
            if body.get("WhoId") not in self.contacts:
                return errors(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            duplicate = by_key(self.tasks, self.task_key, body.get(self.task_key))
            if self.task_key in body and duplicate is not None:
                return errors(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {self.task_key} duplicates value on record with "
                    f"id: {duplicate}",
                )
            tid = self._id("00T")
            self.tasks[tid] = dict(body)
            return JSONResponse({"id": tid, "success": True, "errors": []}, status_code=201)

        @app.delete(SF + "/sobjects/Task/{tid}")
        async def delete_task(tid: str, request: Request) -> Response:
            _, refused = await guard(request)
            if refused:
                return refused
            if self.tasks.pop(tid, None) is None:
                return errors(404, "NOT_FOUND", "The requested resource does not exist")
            return Response(status_code=204)

        @app.get(SF + "/limits")
        async def limits(request: Request) -> Response:
            _, refused = await guard(request)
            if refused:
                return refused
            return JSONResponse({"DailyApiRequests": {"Max": 15000, "Remaining": 14999}})

        return app


# --- Pipedrive ---------------------------------------------------------------------------


@dataclass
class FakePipedrive(Fake):
    """Pipedrive v1: persons (search, create), call logs (create, delete)."""

    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    call_logs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        def error(status: int, message: str) -> JSONResponse:
            body = {"success": False, "error": message, "errorCode": status, "error_info": ""}
            return JSONResponse(body, status_code=status)

        async def guard(request: Request) -> tuple[Seen, Response | None]:
            seen = await self.record(request)
            scripted = self.scripted(seen)
            if scripted is not None:
                return seen, scripted
            if seen.headers.get("x-api-token") not in self.tokens or "api_token" in seen.query:
                return seen, error(401, "unauthorized access")
            return seen, None

        @app.get("/v1/persons/search")
        async def search(request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            term, where = seen.query["term"], seen.query["fields"]
            items = [
                {"result_score": 1.0, "item": {"id": int(pid), "type": "person", "name": p["name"]}}
                for pid, p in self.persons.items()
                if term in [v["value"] for v in p.get(where, [])]
            ]
            return JSONResponse(
                {"success": True, "data": {"items": items[:1]}, "additional_data": {}}
            )

        @app.post("/v1/persons")
        async def create_person(request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            if not seen.body.get("name"):
                return error(400, "Name must be given.")
            pid = self.next_id()
            self.persons[pid] = dict(seen.body)
            return JSONResponse(
                {"success": True, "data": {"id": int(pid), **seen.body}}, status_code=201
            )

        @app.post("/v1/callLogs")
        async def create_call_log(request: Request) -> Response:
            seen, refused = await guard(request)
            if refused:
                return refused
            body = seen.body
            for required in ("to_phone_number", "outcome", "start_time", "end_time"):
                if not body.get(required):
                    return error(400, f"{required} is required")
            try:
                time.strptime(body["start_time"], "%Y-%m-%d %H:%M:%S")
            except ValueError:
                return error(400, "start_time must be in the format YYYY-MM-DD HH:MM:SS")
            if str(body.get("person_id")) not in self.persons:
                return error(404, "Person not found")
            lid = uuid.uuid4().hex
            self.call_logs[lid] = dict(body)
            return JSONResponse({"success": True, "data": {"id": lid, **body}})

        @app.delete("/v1/callLogs/{lid}")
        async def delete_call_log(lid: str, request: Request) -> Response:
            _, refused = await guard(request)
            if refused:
                return refused
            if self.call_logs.pop(lid, None) is None:
                return error(404, "Call log not found")
            return JSONResponse({"success": True})

        @app.get("/v1/users/me")
        async def me(request: Request) -> Response:
            _, refused = await guard(request)
            if refused:
                return refused
            return JSONResponse({"success": True, "data": {"id": 1}})

        return app


# --- Standard Webhooks receiver --------------------------------------------------------------

Behaviour = Callable[["WebhookReceiver"], Answer | None]


@dataclass
class Delivery:
    """One verified POST the receiver got."""

    msg_id: str
    timestamp: int
    payload: dict[str, Any]
    at: float


@dataclass
class WebhookReceiver:
    """Verifies every POST with the `standardwebhooks` package; keeps one record per id."""

    secret: str | None = None
    behaviour: Behaviour | None = None
    posts: list[tuple[float, int]] = field(default_factory=list)  # (time, status answered)
    deliveries: list[Delivery] = field(default_factory=list)
    bad_signatures: int = 0

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """What the receiver stored: one record per webhook-id (its dedupe key)."""
        return {d.msg_id: d.payload for d in self.deliveries}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            raw = await request.body()
            now = time.monotonic()
            if self.behaviour is not None:
                answer = self.behaviour(self)
                if answer is not None:
                    status, headers, body = answer
                    self.posts.append((now, status))
                    return JSONResponse(body or {}, status_code=status, headers=headers)
            try:
                assert self.secret is not None
                payload = Webhook(self.secret).verify(raw, dict(request.headers))
            except (WebhookVerificationError, AssertionError):
                self.bad_signatures += 1
                self.posts.append((now, 401))
                return JSONResponse({"error": "bad signature"}, status_code=401)
            self.posts.append((now, 200))
            self.deliveries.append(
                Delivery(
                    request.headers["webhook-id"],
                    int(request.headers["webhook-timestamp"]),
                    payload,
                    now,
                )
            )
            return JSONResponse({"ok": True})

        return app
