"""SendGrid's Cancel Scheduled Sends API for the local server (tests/servers/sendgrid.py):
`POST /v3/mail/batch`, `GET /v3/mail/batch/{id}`, `POST`/`GET /v3/user/scheduled_sends`,
`GET`/`PATCH`/`DELETE /v3/user/scheduled_sends/{id}`, with the documented behaviour
(SOURCES.md) given a clock the test can set:

- a request with a `batch_id` and `send_at` is delivered at `send_at`, unless its batch is
  cancelled or paused then; a cancel made later than 10 minutes before `send_at` is "not
  guaranteed": this server takes the worst case and delivers anyway;
- at most 10 batches paused or cancelled at one time (400 beyond); a status change on a
  batch already paused or cancelled answers 400; deleting a cancellation before `send_at`
  lets the batch go out, after `send_at` its messages stay discarded.

Request bodies and every answer are validated against the OpenAPI file.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from tests.specs import spec_path

SPEC = spec_path("sendgrid-v3-scheduled-sends.openapi.json")
MAX_CANCELLED = 10
CANCEL_MARGIN = 600  # seconds before send_at


def _validator(schema: dict[str, Any], components: dict[str, Any]) -> jsonschema.Validator:
    schema = {**schema, "components": components}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


class ScheduledSpec:
    """Request and response schemas of the scheduled-sends endpoints."""

    def __init__(self) -> None:
        spec = json.loads(SPEC.read_text(encoding="utf-8"))
        self.paths, self.components = spec["paths"], spec["components"]
        self._validators: dict[tuple[str, str, str], jsonschema.Validator] = {}

    def _cached(self, key: tuple[str, str, str], schema: dict[str, Any]) -> jsonschema.Validator:
        if key not in self._validators:
            self._validators[key] = _validator(schema, self.components)
        return self._validators[key]

    def _operation(self, path: str, method: str) -> dict[str, Any]:
        return self.paths[path][method]

    def request_problems(self, path: str, method: str, body: Any) -> list[str]:
        content = self._operation(path, method).get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return []
        errors = list(self._cached((path, method, "request"), schema).iter_errors(body))
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]

    def check_response(self, path: str, method: str, status: int, body: Any) -> None:
        """Our own answers must match the spec too (a test server that drifts proves
        nothing)."""
        response = self._operation(path, method)["responses"][str(status)]
        if "$ref" in response:
            response = self.components["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            self._cached((path, method, str(status)), schema).validate(body)


@dataclass
class Cancellation:
    status: str  # 'cancel' | 'pause'
    created: float
    deleted: float | None = None


class ScheduledSends:
    """The server-side state: batch ids, cancellations, and who is delivered when."""

    def __init__(self) -> None:
        self.spec = ScheduledSpec()
        self.batches: dict[str, float] = {}  # batch id -> created
        self.cancellations: dict[str, Cancellation] = {}
        self.first_send_at: dict[str, int] = {}  # batch id -> earliest send_at used with it

    def open(self) -> list[str]:
        return [b for b, c in self.cancellations.items() if c.deleted is None]

    def discarded(self, batch_id: str, send_at: int) -> bool:
        """Was a message of this batch, due at send_at, cancelled in time?"""
        c = self.cancellations.get(batch_id)
        if c is None or c.created > send_at - CANCEL_MARGIN:
            return False  # never cancelled, or too late to be guaranteed: delivered
        return c.deleted is None or c.deleted > send_at

    def handle(self, method: str, path: str, body: Any, now: float) -> tuple[int, Any, str, str]:
        """(status, JSON answer or None, spec path, spec method)."""
        parts = path.strip("/").split("/")
        if path == "/v3/mail/batch" and method == "post":
            batch_id = secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
            self.batches[batch_id] = now
            return 201, {"batch_id": batch_id}, path, method
        if parts[:3] == ["v3", "mail", "batch"] and len(parts) == 4 and method == "get":
            spec_path_ = "/v3/mail/batch/{batch_id}"
            if parts[3] not in self.batches:
                return 400, _errors("invalid batch id"), spec_path_, method
            return 200, {"batch_id": parts[3]}, spec_path_, method
        if path == "/v3/user/scheduled_sends":
            if method == "get":
                listed = [
                    {"batch_id": b, "status": self.cancellations[b].status} for b in self.open()
                ]
                return 200, listed, path, method
            return self._add(body, now) + (path, method)
        if parts[:3] == ["v3", "user", "scheduled_sends"] and len(parts) == 4:
            return self._one(method, parts[3], body, now) + (
                "/v3/user/scheduled_sends/{batch_id}",
                method,
            )
        return 404, _errors("not found"), "", ""

    def _add(self, body: Any, now: float) -> tuple[int, Any]:
        problems = self.spec.request_problems("/v3/user/scheduled_sends", "post", body)
        if problems:
            return 400, _errors(problems[0])
        batch_id = body["batch_id"]
        if batch_id not in self.batches:
            return 400, _errors("invalid batch id")
        if batch_id in self.open():
            return 400, _errors(f"batch {batch_id} is already paused or cancelled")
        if len(self.open()) >= MAX_CANCELLED:
            return 400, _errors("max limit reached: at most 10 batches paused or cancelled")
        self.cancellations[batch_id] = Cancellation(body["status"], now)
        return 201, {"batch_id": batch_id, "status": body["status"]}

    def _one(self, method: str, batch_id: str, body: Any, now: float) -> tuple[int, Any]:
        c = self.cancellations.get(batch_id)
        if c is None or c.deleted is not None:
            return 404, _errors("no scheduled send with this batch id")
        if method == "get":
            return 200, [{"batch_id": batch_id, "status": c.status}]
        if method == "patch":
            problems = self.spec.request_problems(
                "/v3/user/scheduled_sends/{batch_id}", "patch", body
            )
            if problems:
                return 400, _errors(problems[0])
            c.status = body["status"]
            return 204, None
        if method == "delete":
            c.deleted = now
            return 204, None
        return 404, _errors("not found")


def _errors(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}
