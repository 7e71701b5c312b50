"""Routes whose endpoints FastAPI need not solve on every request.

For each request FastAPI walks the route's dependency tree: it builds a sub-response, parses
cookies, matches four kinds of parameters, keys a cache and classifies every callable again. For
an endpoint that takes only the request and the caller, that walk was a third of the gateway's
in-process work per request (bench/RESULTS.md, eighth series).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class DirectRoute(APIRoute):
    """An APIRoute that calls a plain endpoint directly.

    An endpoint is plain when it is a coroutine annotated to return a `Response` and its
    parameters are the `Request` and dependencies that themselves take only the `Request` (no
    path, query, header, cookie or body parameters, no sub-dependencies, no `yield`, none twice).
    For such an endpoint FastAPI's solving validates nothing and builds nothing the endpoint
    uses: the direct handler calls each dependency with the request, in declaration order, then
    the endpoint, and returns its response as FastAPI would. The OpenAPI document comes from the
    same dependant and does not change. Any other endpoint, and every request while dependency
    overrides are set, takes FastAPI's own handler.

    Only dependencies declared on the route or on its router are seen: a router carrying one
    must not be included with `include_router(dependencies=...)` (`service_app` includes none).
    """

    def get_route_handler(self) -> Handler:
        """The direct handler for a plain endpoint, FastAPI's otherwise."""
        standard = super().get_route_handler()
        direct = _direct_handler(self.dependant, self.endpoint, standard)
        return standard if direct is None else direct


def _direct_handler(
    dependant: Dependant, endpoint: Callable[..., Any], standard: Handler
) -> Handler | None:
    resolvers = _resolvers(dependant)
    if resolvers is None or not _returns_response(endpoint):
        return None
    request_name = dependant.request_param_name

    async def handler(request: Request) -> Response:
        if request.app.dependency_overrides:
            return await standard(request)
        values: dict[str, Any] = {}
        for name, resolve in resolvers:
            value = await resolve(request)
            if name is not None:
                values[name] = value
        if request_name is not None:
            values[request_name] = request
        response = await endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{endpoint.__qualname__} returned {type(response).__name__}")
        return response

    return handler


def _resolvers(
    dependant: Dependant,
) -> list[tuple[str | None, Callable[[Request], Awaitable[Any]]]] | None:
    """The endpoint's dependencies as (parameter name, call), or None when it is not plain."""
    if _takes_more_than_the_request(dependant) or not _is_coroutine(dependant.call):
        return None
    resolvers: list[tuple[str | None, Callable[[Request], Awaitable[Any]]]] = []
    seen: set[int] = set()
    for sub in dependant.dependencies:
        call = sub.call
        if (
            call is None
            or sub.dependencies
            or _takes_more_than_the_request(sub)
            or sub.request_param_name is None
            or sub.concurrency is not None
            or not _is_coroutine(call)
            or id(call) in seen
        ):
            return None
        seen.add(id(call))
        resolvers.append((sub.name, _with_request(call, sub.request_param_name)))
    return resolvers


def _with_request(
    call: Callable[..., Awaitable[Any]], name: str
) -> Callable[[Request], Awaitable[Any]]:
    """The call taking the request positionally, as its one parameter."""
    parameter = inspect.signature(call).parameters[name]
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
        return lambda request: call(**{name: request})
    return call


def _takes_more_than_the_request(dependant: Dependant) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )


def _is_coroutine(call: Callable[..., Any] | None) -> bool:
    if call is None:
        return False
    if inspect.isroutine(call):
        return inspect.iscoroutinefunction(call)
    return inspect.iscoroutinefunction(type(call).__call__)


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    try:
        returned = typing.get_type_hints(endpoint).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)
