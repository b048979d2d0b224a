"""The OpenAPI 3.1 document of /api/v1, generated from the route table and the handlers' own
pydantic models (so it cannot drift from what the API does), served at
/api/v1/openapi.json; a readable reference page at /api/v1/docs (static HTML made from the
document: no script, no CDN); docs/api.md's reference part (`make docs`)."""

from __future__ import annotations

import html
import json
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from publisher.store.api_keys import IDEMPOTENCY_STALE
from publisher.web.api.framework import MAX_ID, Endpoint
from publisher.web.api.problems import TITLES
from publisher.web.api.scopes import SCOPES

REF = "#/components/schemas/{model}"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["location", "field", "detail"],
                "properties": {
                    "location": {"type": "string", "enum": ["body", "query"]},
                    "field": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}
STALE_MINUTES = int(IDEMPOTENCY_STALE.total_seconds() // 60)
IDEMPOTENCY_TEXT = (
    "A retry with the same key and body gets the first answer again, kept 24 hours (not a "
    "429 or a server error: those may be retried). While the first still runs, 409; a "
    f"first that has not answered in {STALE_MINUTES} minutes is taken as lost, and a retry "
    "runs the request afresh."
)
RATE_HEADERS = {
    "RateLimit": {"schema": {"type": "string"}, "description": "what is left (IETF draft)"},
    "RateLimit-Policy": {"schema": {"type": "string"}, "description": "the key's limit"},
}


def _problem(description: str, *, retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if retry:
        answer["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return answer


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    """A $ref to the model, its schema (and its nested models') put into components."""
    schema = model.model_json_schema(ref_template=REF, mode="serialization")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(endpoint: Endpoint, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    if "{id}" in endpoint.path:
        parameters.append(
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
            }
        )
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    return parameters


def _responses(endpoint: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": endpoint.summary, "headers": RATE_HEADERS}
    if endpoint.answer is not None:
        ok["content"] = {"application/json": {"schema": _schema(endpoint.answer, schemas)}}
    responses = {str(endpoint.status if endpoint.answer else 204): ok}
    responses |= {
        "400": _problem("the request cannot be read"),
        "401": _problem("no usable API key"),
        "403": _problem("the key does not allow this"),
        "422": _problem("invalid values (errors lists them)"),
        "429": _problem("too many requests", retry=True),
    }
    responses["404"] = _problem("no such record")
    if endpoint.method != "GET":  # a stale version, someone already there, a running retry
        responses["409"] = _problem("conflict, or the same Idempotency-Key still running")
    if endpoint.body is not None:
        responses["408"] = _problem("the body did not arrive in time")
        responses["413"] = _problem("the body is over this path's size limit")
        responses["415"] = _problem("the body is not application/json")
    for status, why in endpoint.extra:
        responses[status] = _problem(why)
    return responses


def _operation(endpoint: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    scope = "a sign-up key" if endpoint.scope == "signup" else f"scope `{endpoint.scope}`"
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "description": " ".join(filter(None, (endpoint.description, f"Needs {scope}."))),
        "operationId": f"{endpoint.handler.__name__}_{endpoint.tag}",
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint, schemas),
        "responses": _responses(endpoint, schemas),
    }
    if endpoint.method == "POST":
        operation["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": IDEMPOTENCY_TEXT,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(endpoint.body, schemas)}},
        }
    return operation


def document(endpoints: list[Endpoint], server: str = "/api/v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of these endpoints."""
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    scopes = "; ".join(f"`{name}`: {what}" for name, what in SCOPES.items())
    return {
        "openapi": "3.1.0",
        "info": {"title": "publisher API", "version": "1"},
        "servers": [{"url": server}],
        "security": [{"key": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "key": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"An API key made by an owner. Scopes: {scopes}.",
                }
            },
        },
    }


def _endpoints() -> list[Endpoint]:
    from publisher.web.api import ENDPOINTS

    return ENDPOINTS


def _server(request: Request) -> str:
    return request.scope.get("root_path", "") + "/api/v1"


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document(_endpoints(), _server(request)))


async def docs_page(request: Request) -> Response:
    return HTMLResponse(reference_html(document(_endpoints(), _server(request))))


def _rows(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in doc["paths"].items()
        for method, operation in methods.items()
    ]


def reference_html(doc: dict[str, Any]) -> str:
    """The reference page: every operation with its parameters, bodies and answers."""
    e = html.escape
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        "<title>publisher API reference</title></head><body><main>",
        "<h1>publisher API reference</h1>",
        f"<p>Base address: <code>{e(doc['servers'][0]['url'])}</code>. Send "
        "<code>Authorization: Bearer &lt;key&gt;</code>. The document: "
        '<a href="openapi.json">openapi.json</a>.</p>',
    ]
    for method, path, operation in _rows(doc):
        anchor = e(operation["operationId"])
        parts.append(f'<h2 id="{anchor}"><code>{method} {e(path)}</code></h2>')
        parts.append(f"<p>{e(operation['summary'])}. {e(operation['description'])}</p>")
        for parameter in operation["parameters"]:
            schema = json.dumps(parameter["schema"])
            parts.append(
                f"<p>{e(parameter['in'])} parameter <code>{e(parameter['name'])}</code>: "
                f"<code>{e(schema)}</code></p>"
            )
        answers = ", ".join(sorted(operation["responses"]))
        parts.append(f"<p>Answers: {e(answers)}</p>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(f'<h3 id="schema-{e(name)}">{e(name)}</h3>')
        parts.append(f"<pre>{e(json.dumps(schema, indent=2))}</pre>")
    parts.append("<h2>Problems</h2><dl>")
    for slug, title in TITLES.items():
        parts.append(f'<dt id="problem-{e(slug)}"><code>{e(slug)}</code></dt><dd>{e(title)}</dd>')
    parts.append("</dl></main></body></html>")
    return "\n".join(parts)


def reference_markdown(doc: dict[str, Any]) -> str:
    """docs/api.md's generated part."""
    lines = ["## Endpoints", ""]
    for method, path, operation in _rows(doc):
        lines += [
            f"### `{method} {path}`",
            "",
            f"{operation['summary']}. {operation['description']}",
            "",
        ]
        for parameter in operation["parameters"]:
            schema = json.dumps(parameter["schema"])
            lines.append(f"- {parameter['in']} `{parameter['name']}`: `{schema}`")
        if "requestBody" in operation:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            lines.append(f"- body: `{ref.rsplit('/', 1)[-1]}`")
        lines += [f"- answers: {', '.join(sorted(operation['responses']))}", ""]
    lines += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        lines += [f"### {name}", "", "```json", json.dumps(schema, indent=2), "```", ""]
    lines += ["## Problems", ""]
    lines += [f"- `{slug}`: {title}" for slug, title in TITLES.items()]
    return "\n".join(lines) + "\n"


ROUTES = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
]
