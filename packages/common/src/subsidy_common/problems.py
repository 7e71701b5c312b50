"""RFC 9457 problem details: one error base and the handlers that render it."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://subsidy.example.cn/problems/"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class DomainError(Exception):
    """An error the API reports as a problem: its class says what happened, and the status."""

    type: str = "about:blank"
    title: str = "Error"
    status: int = 400

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers or {}
        self.extensions = extensions

    def body(self) -> dict[str, Any]:
        """The problem document for this error."""
        return problem_body(
            self.status,
            self.detail,
            type_=self.type,
            title=self.title,
            errors=self.errors,
            **self.extensions,
        )


def problem_type(slug: str) -> str:
    """The URI naming one kind of problem."""
    return TYPE_BASE + slug


class NotFound(DomainError):
    """The object does not exist, or belongs to someone else."""

    type = problem_type("not-found")
    title = "Not Found"
    status = 404


class Unauthorized(DomainError):
    """No credentials, or credentials nobody issued."""

    type = problem_type("unauthorized")
    title = "Unauthorized"
    status = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="subsidy"'})


class Forbidden(DomainError):
    """Known credentials without the right to do this."""

    type = problem_type("forbidden")
    title = "Forbidden"
    status = 403


class Conflict(DomainError):
    """The request conflicts with the current state of the resource."""

    type = problem_type("conflict")
    title = "Conflict"
    status = 409


class InvalidInput(DomainError):
    """Input that is well formed but wrong, field by field."""

    type = problem_type("validation-error")
    title = "Unprocessable Content"
    status = 422


def not_a_cursor() -> InvalidInput:
    """The answer to a `?cursor=` that no page of the list gave."""
    return InvalidInput(
        "The cursor names no item of this list.",
        errors=[{"loc": ["query", "cursor"], "msg": "not a cursor this list gave"}],
    )


# The largest row number an INTEGER column holds on PostgreSQL: a larger one names no row, and
# asking the database for it would fail there rather than find nothing.
_LAST_ROW_NUMBER = 2**31 - 1


def numbered_cursor(cursor: str | None) -> int | None:
    """The row number a cursor of a list kept by number names (422 if it cannot be one)."""
    if cursor is None:
        return None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10):
        raise not_a_cursor()
    number = int(cursor)
    if number > _LAST_ROW_NUMBER:
        raise not_a_cursor()
    return number


class ContentTooLarge(DomainError):
    """A request body, or a batch answered whole, above what the operation takes."""

    type = problem_type("content-too-large")
    title = "Content Too Large"
    status = 413


class UnsupportedMediaType(DomainError):
    """A body declared as something the operation does not read (a form, text)."""

    type = problem_type("unsupported-media-type")
    title = "Unsupported Media Type"
    status = 415


class ServiceUnavailable(DomainError):
    """A dependency is down or overloaded; the client may retry later."""

    type = problem_type("service-unavailable")
    title = "Service Unavailable"
    status = 503

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_body(
    status: int,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """Build an RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extensions)
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """Render a problem document with its media type."""
    return Response(
        orjson.dumps(body),
        status_code=int(body["status"]),
        media_type=PROBLEM_JSON,
        headers=headers,
    )


M = TypeVar("M", bound=BaseModel)


def validated_body(model: type[M], body: bytes) -> M:
    """A JSON body validated straight from its bytes (one pass, no intermediate dict); a 422
    naming each field with the `body` location FastAPI gives its own body parameters."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's validation errors as `{loc, msg, type}` items naming each field."""
    out = []
    for error in exc.errors():
        item: dict[str, Any] = {
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg", "invalid"),
            "type": error.get("type", "value_error"),
        }
        out.append(item)
    return out


async def _domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return problem_response(exc.body(), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        body = problem_body(
            400,
            "The request body is not valid JSON.",
            type_=problem_type("malformed-body"),
            errors=errors,
        )
        return problem_response(body)
    names = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    body = problem_body(
        422,
        f"Invalid request: {names}" if names else "Invalid request",
        type_=problem_type("validation-error"),
        errors=errors,
    )
    return problem_response(body)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's reading of a JSON body that is not UTF-8: a malformed body, as any other.
        body = problem_body(
            400,
            "The request body is not JSON in UTF-8.",
            type_=problem_type("malformed-body"),
            errors=[{"loc": ["body"], "msg": f"not UTF-8: {exc.__cause__.reason} at byte "
                     f"{exc.__cause__.start}", "type": "json_invalid"}],
        )  # fmt: skip
        return problem_response(body)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(problem_body(exc.status_code, detail), headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's),
    the routes of included routers among them."""
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    if "GET" in methods:  # answered as the GET is (the input guard)
        methods.add("HEAD")
    return sorted(methods)


def _routes(routes: Sequence[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # a router included whole
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


# Raised by asyncpg itself on the paths that use the driver directly.
_DRIVER_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,  # class 08: connection lost or refused
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    # A pooled connection whose backend was ended (pg_terminate_backend, a failover) may be
    # handed out once more before the driver knows: it then refuses its first statement so.
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot be reached or is full, not a bug."""
    if isinstance(exc, (sa_exc.TimeoutError, ConnectionError, *_DRIVER_UNAVAILABLE)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        ):
            return True
        text = str(exc.orig).lower()
        return any(
            s in text
            for s in ("too many clients", "connection refused", "cannot connect", "shutting down")
        )
    return False


def unique_violation(exc: BaseException) -> bool:
    """Whether an error is a unique constraint refusing a row another request wrote first."""
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return True
    return isinstance(exc, sa_exc.IntegrityError) and "unique constraint" in str(exc.orig).lower()


async def _database_error(_: Request, exc: Exception) -> Response:
    if unique_violation(exc):
        # A race a handler did not name: the same thing written twice at once. Nothing was
        # written by this request (its transaction rolled back).
        body = problem_body(
            409,
            "Something this request writes was written by another request at the same time;"
            " read it again before retrying.",
            type_=problem_type("conflict"),
        )
        return problem_response(body)
    if not database_unavailable(exc):
        raise exc
    if isinstance(exc, asyncpg.exceptions.InterfaceError | asyncpg.exceptions.InternalClientError):
        # Also what a misuse of the driver raises: told, in case it is not an outage.
        log.warning("database connection unusable; answered 503", exc_info=exc)
    detail = (
        "Every database connection is busy; retry shortly."
        if isinstance(exc, sa_exc.TimeoutError)
        else "The database is unavailable; retry shortly."
    )
    body = problem_body(503, detail, type_=problem_type("database-unavailable"))
    return problem_response(body, {"Retry-After": "1"})


# nginx's code for a request whose client closed the connection before it was answered: what
# the access log then shows. Nothing is sent, since no one is there to read it.
CLIENT_CLOSED_REQUEST = 499


async def _timed_out(_: Request, exc: Exception) -> Response:
    """What did not answer in time without naming itself: a database that accepts connections
    and then says nothing (a stalled server, a partition), as its driver's connect times out."""
    log.warning("a dependency did not answer in time; answered 503", exc_info=exc)
    problem = ServiceUnavailable("The database or a service did not answer in time; retry shortly.")
    return problem_response(problem.body(), problem.headers)


async def _client_gone(_: Request, __: Exception) -> Response:
    """A client that left while its body was still being read: not an error of the service."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error the app can raise as application/problem+json; a client gone
    mid-body is only logged as such."""
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(ConnectionError, _database_error)
    app.add_exception_handler(asyncpg.exceptions.PostgresError, _database_error)
    app.add_exception_handler(asyncpg.exceptions.InterfaceError, _database_error)
    app.add_exception_handler(asyncpg.exceptions.InternalClientError, _database_error)
    app.add_exception_handler(TimeoutError, _timed_out)
