"""What wraps every request: its id, access log line and metrics, and the input guard."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subsidy_common.logs import request_id_var
from subsidy_common.metrics import Metrics, route_template
from subsidy_common.problems import (
    ContentTooLarge,
    DomainError,
    InvalidInput,
    UnsupportedMediaType,
    problem_body,
)

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode()
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_RESPONSE_HEADERS = "response_headers"

access_log = logging.getLogger("subsidy.access")
log = logging.getLogger("subsidy.errors")


class RequestContextMiddleware:
    """Adopt or mint a request id and echo it on every response; log and count the request once.

    The one wrapper around every request, outermost of ours: its time, status and route template
    include refusals made before routing (413, 422) and failures it renders itself (500). Headers
    a handler leaves in `scope["state"]["response_headers"]` (see `add_response_headers`) go on
    the response too, unless the response already sets them.
    """

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, quiet_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == _HEADER_BYTES:
                candidate = value.decode("latin-1")
                if _VALID_ID.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = os.urandom(16).hex()  # 128 random bits, as a UUID's 32 digits
        token = request_id_var.set(request_id)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        status_sent = False
        header = (_HEADER_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status = message["status"]
                status_sent = True
                headers = [*message.get("headers", ()), header]
                extra = state.get(_RESPONSE_HEADERS)
                if extra:
                    present = {name.lower() for name, _ in headers}
                    headers.extend(pair for pair in extra if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Render the 500 here, inside the request context, so it carries the request id.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if status_sent:
                raise
            status = 500
            body = orjson.dumps(problem_body(500, "The server could not complete the request."))
            await _send_problem(send, 500, body, [header])
        finally:
            path = scope["path"]
            seconds = time.perf_counter() - started
            self.metrics.observe(
                method=scope["method"], route=route_template(scope), status=status, seconds=seconds
            )
            if path not in self.quiet_paths:
                access_log.info(
                    "%s %s %d",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )
            request_id_var.reset(token)


def add_response_headers(request: Request, headers: Mapping[str, str]) -> None:
    """Headers for this request's response, whichever handler or error ends up answering it."""
    state = request.scope.setdefault("state", {})
    pairs = state.setdefault(_RESPONSE_HEADERS, [])
    pairs.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    )


class InputGuardMiddleware:
    """Refuse, before any handler sees it, input no service accepts.

    - Control characters (NUL among them) in the path or the query: 422 naming where. PostgreSQL
      cannot store NUL in text, and a control character in an id would end up in a downstream
      URL: both must be refused at the edge, not fail deep inside.
    - A body above `max_bytes`, declared or streamed: 413. The body is read up to the limit
      before the app sees it, so no handler can swallow the overflow as a parse error; memory is
      bounded by the limit. Paths in `streaming_paths` read their bodies as streams and bound
      each part themselves.
    - NUL anywhere in a JSON body: 422 naming where.
    - A body declared as something other than JSON (a form, text): 415. A body without a
      Content-Type is read as JSON.
    - A body sent compressed (`Content-Encoding` other than identity): 415, naming the one
      coding accepted (RFC 9110, 15.5.16). Read as it came, it was a string of control bytes.

    And a HEAD request is answered as its GET, without the body.

    With `on_demand`, a body is read and checked when the app first asks for it, not before the
    app runs, and a refusal is raised there as a `DomainError`: an app whose routes read their
    bodies by hand, once they know the caller (the gateway), answers a caller without a valid
    key 401 at once, without waiting for a body it will not read. A route that declares a body
    parameter must not be served so, since FastAPI reads those before anything else and takes
    any error in the reading for a malformed body.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        streaming_paths: frozenset[str] = frozenset(),
        on_demand: bool = False,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streaming_paths = streaming_paths
        self.on_demand = on_demand

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _CONTROL.search(scope["path"]):
            await _refuse(send, _control_characters(["path"]))
            return
        query = scope.get("query_string", b"")
        if b"%" in query or _CONTROL_BYTES.search(query):
            for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if _CONTROL.search(key) or _CONTROL.search(value):
                    await _refuse(send, _control_characters(["query", key]))
                    return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            if scope["method"] == "HEAD":  # a GET's answer without its body (RFC 9110, 9.3.2)
                await self.app({**scope, "method": "GET"}, receive, _without_body(send))
                return
            await self.app(scope, receive, send)
            return
        if _encoded(scope):
            await _refuse(
                send,
                UnsupportedMediaType(
                    "The request body must not be compressed: send it without Content-Encoding.",
                    headers={"Accept-Encoding": "identity"},
                ),
            )
            return
        if scope["path"] in self.streaming_paths:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _refuse(send, _too_large(self.max_bytes))
                return
        if self.on_demand:
            await self.app(scope, _checked_when_read(scope, receive, self.max_bytes), send)
            return
        try:
            body = await _whole_body(scope, receive, self.max_bytes)
        except DomainError as exc:
            await _refuse(send, exc)
            return
        if body is None:  # the client went away
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _whole_body(scope: Scope, receive: Receive, max_bytes: int) -> bytes | None:
    """The request's body, read to its end and checked, or None when the client went away.

    Raises the problem a body no service accepts is answered with: 413, 415 or 422.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if body and not _json_declared(scope):
        raise UnsupportedMediaType(
            "The request body must be JSON: send it with Content-Type: application/json."
        )
    where = nul_location(body)
    if where is not None:
        raise _control_characters(["body", *where])
    return body


def _checked_when_read(scope: Scope, receive: Receive, max_bytes: int) -> Receive:
    """`receive` for an app that asks for the body itself: the whole body, checked, at its
    first call; a refusal is raised to the app, whose problem handlers answer it."""
    read = False

    async def checked() -> Message:
        nonlocal read
        if read:
            return await receive()
        read = True
        body = await _whole_body(scope, receive, max_bytes)
        if body is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": body, "more_body": False}

    return checked


def _encoded(scope: Scope) -> bool:
    """Whether the request's body comes in a content coding other than identity."""
    for name, value in scope["headers"]:
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return True
    return False


def _json_declared(scope: Scope) -> bool:
    """Whether the request declares a JSON body, or declares none."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return json_media(value.decode("latin-1"))
    return True


def json_media(content_type: str) -> bool:
    """Whether a Content-Type names JSON: `application/json` or a `+json` type."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _without_body(send: Send) -> Send:
    """`send` for a HEAD request: the answer's status and headers, Content-Length among them,
    and no body."""

    async def head_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head_only


async def _send_problem(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


def nul_location(body: bytes) -> list[str | int] | None:
    """Where a JSON body holds a NUL character, or None (bodies without one are not parsed)."""
    if b"\\u0000" not in body and b"\x00" not in body:
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [] if b"\x00" in body else None

    # Depth first, in document order, without recursion: orjson reads nesting about 1,000 deep,
    # as deep as Python's own recursion goes.
    stack: list[tuple[object, list[str | int]]] = [(document, [])]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return loc
        elif isinstance(node, dict):
            for key in node:
                if "\x00" in key:
                    return [*loc, key]
            stack.extend((value, [*loc, key]) for key, value in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((value, [*loc, i]) for i, value in reversed(list(enumerate(node))))
    return None


def _too_large(limit: int) -> ContentTooLarge:
    return ContentTooLarge(f"The request body is larger than {limit} bytes.")


def _control_characters(loc: list[str | int]) -> InvalidInput:
    return InvalidInput(
        "Control characters (such as NUL) are not allowed in " + ".".join(str(p) for p in loc),
        errors=[{"loc": loc, "msg": "contains a control character", "type": "value_error"}],
    )


async def _refuse(send: Send, error: DomainError) -> None:
    """Answer with an error's problem before the app has seen the request."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await _send_problem(send, error.status, orjson.dumps(error.body()), headers)
