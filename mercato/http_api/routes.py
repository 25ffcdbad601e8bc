"""A route table: each route declared once, with what the API's document says of it.

An API keeps one `RouteTable`; its modules declare handlers with `@table.route(...)`
and the component mounts the table on its aiohttp app under the API's prefix. The
same table feeds the OpenAPI document and the tests that walk every route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Spec:
    """What the document says of a route; `auth` is one of the API's own caller kinds."""

    summary: str
    auth: str
    body: dict[str, Any] | None = None  # JSON body field → its schema
    success: int = 200
    query: dict[str, str] | None = None  # query parameter → what it does


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    spec: Spec


class RouteTable:
    """One API's routes, in the order they were declared."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(self, method: str, path: str, spec: Spec) -> Callable[[Handler], Handler]:
        """Declare a handler: `@table.route("GET", "/shops/{slug}", Spec(...))`."""
        def register(handler: Handler) -> Handler:
            self._routes.append(Route(method, path, handler, spec))
            return handler
        return register

    def __iter__(self) -> Iterator[Route]:
        return iter(list(self._routes))

    def __len__(self) -> int:
        return len(self._routes)

    def mount(self, app: web.Application, prefix: str = "") -> None:
        """Serve every declared route on `app`, each path under `prefix`."""
        for method, path, handler, _spec in self._routes:
            app.router.add_route(method, prefix + path, handler)
