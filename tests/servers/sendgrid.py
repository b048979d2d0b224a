"""A local SendGrid-compatible `POST /v3/mail/send` on 127.0.0.1, for tests and benchmarks.

Every body is validated against the fixed OpenAPI file (tests/specs) and the limits
SOURCES.md lists (the schema cannot express them). It records accepted recipients and can be
told to answer 429 + Retry-After, 500, 400, 401, 413 (`too_large_over`), to hang, or to
`drop` (read and accept the request, then close the connection without answering); it can
hold requests (accept them, never answer) to stand for a provider that took a batch while
the sender died.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from tests.servers.scheduled import ScheduledSends
from tests.specs import spec_path

SPEC = spec_path("sendgrid-v3-mail-send.fixed.openapi.json")
MAX_RECIPIENTS = 1000
MAX_BYTES = 30 * 1024 * 1024
MAX_CUSTOM_ARGS = 10_000
MAX_SUBSTITUTIONS = 10_000
MAX_CATEGORIES = 10
SEND_AT_AHEAD = 72 * 3600


def request_validator() -> jsonschema.Validator:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    post = spec["paths"]["/v3/mail/send"]["post"]
    schema = dict(post["requestBody"]["content"]["application/json"]["schema"])
    schema["components"] = spec["components"]  # so '#/components/schemas/...' resolves
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def limit_problems(body: dict[str, Any], now: float) -> list[str]:
    """SendGrid's documented limits that the schema does not express."""
    problems = []
    addresses = [
        r["email"].lower()
        for p in body.get("personalizations", [])
        for kind in ("to", "cc", "bcc")
        for r in p.get(kind, [])
    ]
    if len(addresses) > MAX_RECIPIENTS:
        problems.append(f"{len(addresses)} recipients in one request (max {MAX_RECIPIENTS})")
    repeated = [a for a, n in Counter(addresses).items() if n > 1]
    if repeated:
        problems.append(f"address given more than once in a request: {repeated[0]}")
    args = [body.get("custom_args", {})] + [
        p.get("custom_args", {}) for p in body.get("personalizations", [])
    ]
    if any(len(json.dumps(a).encode()) > MAX_CUSTOM_ARGS for a in args):
        problems.append("custom_args over 10,000 bytes")
    for p in body.get("personalizations", []):
        subs = p.get("substitutions", {})
        if any(not isinstance(v, str) for v in subs.values()):
            problems.append("substitution values must be strings")
        if sum(len(k.encode()) + len(str(v).encode()) for k, v in subs.items()) > MAX_SUBSTITUTIONS:
            problems.append("substitutions over 10,000 bytes in a personalization")
    if len(body.get("categories", [])) > MAX_CATEGORIES:
        problems.append("more than 10 categories")
    for send_at in [body.get("send_at")] + [p.get("send_at") for p in body["personalizations"]]:
        if send_at is not None and send_at > now + SEND_AT_AHEAD:
            problems.append("send_at more than 72 hours ahead")
    content = body.get("content", [])
    types = [c["type"] for c in content]
    if "text/plain" in types and types[0] != "text/plain":
        problems.append("text/plain must come first in content")
    return problems


@dataclass
class Recorded:
    body: dict[str, Any]
    recipients: list[str]
    batch_id: str | None = None
    send_at: int | None = None
    answered: threading.Event = field(default_factory=threading.Event)  # its 202 went out


@dataclass
class FakeSendGrid:
    """Start with `with FakeSendGrid() as server:`; `server.url` is the client's host."""

    api_key: str = "SG.test-key"
    latency: float = 0.0  # seconds before answering
    validate: str = "all"  # 'all' | 'first' (schema and limits on the first body only)
    too_large_over: int | None = None  # answer 413 when a request has more personalizations
    # (0: every request, the message itself too large)
    plan: list[Any] = field(default_factory=list)  # next: 429, 500, 400, 401, 'hang', 'drop'
    retry_after: int = 1
    hold_after: int | None = None  # accept but never answer once this many were accepted
    # callback(n, recorded) after request n (1-based) is recorded, before its 202 (if any)
    on_accept: Any = None
    keep_bodies: bool = True  # False (benchmarks): keep only the recipients
    clock: Any = time.time  # the server's "now" (epoch seconds): tests move it

    def __post_init__(self) -> None:
        self.requests: list[Recorded] = []
        self.rejected: list[tuple[int, str]] = []
        self.seen_statuses: list[int | str] = []
        self.held = 0
        self.scheduled = ScheduledSends()
        self._validator = request_validator() if self.validate != "none" else None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def recipients(self) -> list[str]:
        """Everyone of every accepted request (scheduled or not)."""
        with self._lock:
            return [r for req in self.requests for r in req.recipients]

    def delivered(self) -> list[str]:
        """Who receives a message once every send_at has passed: accepted requests minus
        those whose batch was cancelled in time (tests/servers/scheduled.py)."""
        with self._lock:
            return [
                r
                for req in self.requests
                if not (
                    req.batch_id
                    and req.send_at is not None
                    and self.scheduled.discarded(req.batch_id, req.send_at)
                )
                for r in req.recipients
            ]

    def answered(self) -> list[Recorded]:
        """The accepted requests whose 202 has been written back to the client."""
        with self._lock:
            return [req for req in self.requests if req.answered.is_set()]

    def api(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """The scheduled-sends endpoints (batch ids, cancellations), spec-checked both ways."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            return _error(400, f"invalid JSON: {exc}")
        with self._lock:
            status, answer, spec_path_, spec_method = self.scheduled.handle(
                method, path, body, self.clock()
            )
        if spec_path_:
            self.scheduled.spec.check_response(spec_path_, spec_method, status, answer)
        data = b"" if answer is None else json.dumps(answer).encode()
        return status, {"Content-Type": "application/json"} if data else {}, data

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> FakeSendGrid:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 64
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # --- request handling ---------------------------------------------------------------

    def answer(
        self, headers: Any, raw: bytes
    ) -> tuple[int, dict[str, str], bytes, Recorded | None]:
        """The status, headers and body to answer with (status 0: none, close the
        connection), and the request recorded as accepted, if it was."""
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            message = "The provided authorization grant is invalid, expired, or revoked"
            return *_error(401, message), None
        with self._lock:  # one step: seen_statuses is in the order the plan was taken
            planned = self.plan.pop(0) if self.plan else None
            self.seen_statuses.append(planned or 202)
        if planned == "hang":
            self._stopping.wait(30)
            return 0, {}, b"", None
        if planned == 429:
            headers_ = {"Retry-After": str(self.retry_after)}
            return *_error(429, "too many requests", headers_), None
        if planned in (400, 401, 403, 500, 503):
            return *_error(planned, f"planned failure {planned}"), None
        if planned == "drop":  # accepted, then the connection is lost before the answer
            self.accept(json.loads(raw))
            return 0, {}, b"", None
        problems = self.check(raw)
        if problems:
            self.rejected.append((400, problems[0]))
            return *_error(400, problems[0]), None
        body = json.loads(raw)
        if self.too_large_over is not None and len(body["personalizations"]) > self.too_large_over:
            return *_error(413, "request entity too large"), None
        if "batch_id" in body and body["batch_id"] not in self.scheduled.batches:
            return *_error(400, "invalid batch id"), None
        return self.accept(body)

    def check(self, raw: bytes) -> list[str]:
        if len(raw) > MAX_BYTES:
            return ["message larger than 30 MB"]
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return [f"invalid JSON: {exc}"]
        with self._lock:
            validate = self._validator is not None and (self.validate == "all" or not self.requests)
        if validate and self._validator is not None:
            errors = sorted(self._validator.iter_errors(body), key=lambda e: list(e.path))
            if errors:
                path = "/".join(str(p) for p in errors[0].absolute_path)
                return [f"{path}: {errors[0].message}"]
        if self.validate == "all" or validate:
            return limit_problems(body, self.clock())
        return []

    def accept(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, Recorded | None]:
        emails = [r["email"] for p in body["personalizations"] for r in p["to"]]
        with self._lock:
            kept = body if self.keep_bodies else {}
            recorded = Recorded(kept, emails, body.get("batch_id"), body.get("send_at"))
            self.requests.append(recorded)
            n = len(self.requests)
            hold = self.hold_after is not None and n > self.hold_after
            if hold:
                self.held += 1
        if self.on_accept:
            self.on_accept(n, recorded)  # this request's own record, whatever came after it
        if hold:
            self._stopping.wait(60)
            return 0, {}, b"", None
        return 202, {}, b"", recorded


def _error(status: int, message: str, headers: dict[str, str] | None = None):
    body = json.dumps({"errors": [{"message": message, "field": None, "help": None}]}).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, body


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSendGrid
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _api(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            self._answer(*_error(401, "authorization required"))
            return
        self._answer(*self.fake.api(method, self.path, raw))

    def do_PATCH(self) -> None:  # noqa: N802
        self._api("patch")

    def do_DELETE(self) -> None:  # noqa: N802
        self._api("delete")

    def do_GET(self) -> None:  # noqa: N802 - GET /stats, for benchmarks in another process
        if self.path != "/stats":
            self._api("get")
            return
        recipients = self.fake.recipients
        body = json.dumps(
            {
                "requests": len(self.fake.requests),
                "recipients": len(recipients),
                "unique": len(set(recipients)),
                "rejected": len(self.fake.rejected),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != "/v3/mail/send":
            self._api("post")
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        started = time.monotonic()
        status, headers, body, recorded = self.fake.answer(self.headers, raw)
        if status and self.fake.latency:  # the provider's own latency, not synchronisation
            time.sleep(max(0.0, self.fake.latency - (time.monotonic() - started)))
        if not status:  # hang / hold: close without an answer
            self.close_connection = True
            return
        self._answer(status, headers, body)
        if recorded is not None:
            recorded.answered.set()
