"""The API tests' client: httpx against the app `publisher serve` runs (`create_app`, served
by uvicorn in a thread of the test: tests/web_support.py), every answer validated against
the served OpenAPI document with openapi-core (request and response)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from publisher.store import Store, api_keys
from publisher.web.bounds import Limits
from tests.web_support import WEB_CONFIG, Served, serve


class _Request:
    def __init__(self, request: httpx.Request) -> None:
        self._url = urlparse(str(request.url))
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(self._url.query)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.host_url = f"{self._url.scheme}://{self._url.netloc}"
        self.path = self._url.path


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.data = response.content
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


class Api:
    """A client whose every answer is checked against the document (problem answers too)."""

    def __init__(self, served: Served, spec: dict[str, Any]) -> None:
        self.served = served
        problems: dict[str, Callable[[bytes], Any]] = {
            "application/problem+json": json.loads
        }  # JSON under its own type
        config = Config(extra_media_type_deserializers=problems)
        self.openapi = OpenAPI.from_dict(spec, config=config)
        self.http = httpx.Client(base_url=served.url + "/api/v1", timeout=30)
        self.checked = 0

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        self.openapi.validate_response(_Request(response.request), _Response(response))
        self.checked += 1
        return response


@contextmanager
def api_server(
    project: Path, store: Store, *, per_minute: int = 600, config_text: str = WEB_CONFIG
) -> Iterator[tuple[Served, Api]]:
    limits = Limits(api_per_minute=per_minute)
    with serve(project, store, limits=limits, config_text=config_text) as served:
        spec = httpx.get(served.url + "/api/v1/openapi.json").json()
        spec["servers"] = [{"url": served.url + "/api/v1"}]  # openapi-core matches whole URLs
        api = Api(served, spec)
        try:
            yield served, api
        finally:
            api.http.close()


def make_key(store: Store, served: Served, *scopes: str, kind: str = "scoped", **extra: Any) -> str:
    _, token = api_keys.create_key(
        store,
        extra.pop("name", "test key"),
        kind=kind,
        scopes=scopes,
        created_by="test",
        now=served.clock.now,
        **extra,
    )
    return token
