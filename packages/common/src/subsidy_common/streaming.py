"""NDJSON streams: a response that may run while the request body is still being read, and the
bound on a line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from subsidy_common.problems import DomainError, problem_type

MAX_LINE_BYTES = 1024 * 1024  # one case of a batch
BOM = b"\xef\xbb\xbf"
# What stands in a stream for a line longer than a case may be, which is passed over unread.
# A NUL byte is never valid JSON: no case a client sends can be taken for it.
OVERLONG = b"\x00line longer than a case may be"


NDJSON = "application/x-ndjson"


def wants_ndjson(accept: str) -> bool:
    """Whether an Accept header asks for the answers streamed as NDJSON: it names NDJSON with a
    weight above 0, and JSON (or a wildcard for it) with no greater weight. `application/json,
    application/x-ndjson;q=0.1` prefers JSON; `application/x-ndjson;q=0` refuses NDJSON."""
    ndjson = json = 0.0
    for part in accept.lower().split(","):
        media, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media == NDJSON:
            ndjson = max(ndjson, weight)
        elif media in ("application/json", "application/*", "*/*"):
            json = max(json, weight)
    return ndjson > 0 and ndjson >= json


class LineTooLong(DomainError):
    """A batch line above the size a single case may have."""

    type = problem_type("line-too-long")
    title = "Content Too Large"
    status = 413


async def without_bom(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A body without the UTF-8 byte order mark a Windows tool may put first (RFC 8259 lets a
    reader ignore it), however the first chunks split it."""
    start = b""
    async for chunk in chunks:
        start += chunk
        if len(start) >= len(BOM) or not BOM.startswith(start):
            break
    else:
        if start and start != BOM:
            yield start
        return
    yield start.removeprefix(BOM)
    async for chunk in chunks:
        yield chunk


async def complete_lines(
    chunks: AsyncIterator[bytes], *, whole: bool = True
) -> AsyncIterator[bytes]:
    """The body's complete lines, as many as each chunk completes, each ending with a newline
    (the last one too); without a leading byte order mark where the chunks are a `whole` body,
    not a part of one (a mark there is the start of a line, as the whole's reader saw it).

    At most one line is held at a time. A line longer than `MAX_LINE_BYTES` is not held: it is
    passed over to its end and `OVERLONG` takes its place, so that its case is answered with a
    problem and the cases after it go on.
    """
    pending = b""
    skipping = False
    async for chunk in without_bom(chunks) if whole else chunks:
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            skipping = False
            chunk = chunk[end + 1 :]
            yield OVERLONG + b"\n"
        data = pending + chunk if pending else chunk
        end = data.rfind(b"\n") + 1
        pending = data[end:]
        if len(pending) > MAX_LINE_BYTES:
            pending, skipping = b"", True
        if end > MAX_LINE_BYTES:  # a chunk this large may hold a whole line too long
            yield _standing_in(data[:end])
        elif end:
            yield data[:end]
    if skipping:
        yield OVERLONG + b"\n"
    elif pending:
        yield pending + b"\n"


def _standing_in(lines: bytes) -> bytes:
    """Complete lines with `OVERLONG` in place of each one too long."""
    each = lines.split(b"\n")[:-1]
    if all(len(line) <= MAX_LINE_BYTES for line in each):
        return lines
    return b"".join((OVERLONG if len(line) > MAX_LINE_BYTES else line) + b"\n" for line in each)


async def request_body(receive: Receive, done: asyncio.Event) -> AsyncIterator[bytes]:
    """A request body as it arrives, straight from the server, with `done` set as soon as its
    last part has come (before it is read): from then on `receive` can only tell of a client
    that left, and a response may listen for that (`DuplexStreamingResponse`)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        body = message.get("body", b"")
        if not message.get("more_body", False):
            done.set()
            if body:
                yield body
            return
        if body:
            yield body


class DuplexStreamingResponse(StreamingResponse):
    """Stream a body while the request's is still being read.

    Starlette's disconnect listener calls `receive()` while the response streams, which takes
    the request's own body messages away from a handler still reading them (NDJSON in, NDJSON
    out). This one listens only once the body has been read (`body_read`, set by
    `request_body`), and then stops the stream when the client leaves: the server's `send`
    returns quietly once the client is gone, so the rest of a long batch would otherwise be
    computed for no one. Without `body_read` a gone client is noticed only by a failed `send`.
    A client that leaves before it has sent its whole body ends the stream as it reads on
    (`ClientDisconnect`, from `request_body`).

    The background task runs however the response ends, a client gone included: the gateway's
    closes the downstream answer it relays, which would otherwise stay open.
    """

    def __init__(
        self, content: Any, *, body_read: asyncio.Event | None = None, **options: Any
    ) -> None:
        super().__init__(content, **options)
        self.body_read = body_read
        self._finishing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        watcher = None
        if self.body_read is not None and task is not None:
            watcher = asyncio.ensure_future(_client_gone(receive, self.body_read))
            watcher.add_done_callback(lambda w: self._stop(task, w))
        try:
            await self._stream(send)
        except ClientDisconnect:
            pass  # the client left while its body was still being read, its answers begun
        except asyncio.CancelledError:
            if watcher is None or not _left(watcher) or task is None:
                raise
            task.uncancel()  # the client left: there is no one to answer
        finally:
            if watcher is not None:
                watcher.cancel()
            if self.background is not None:
                await self.background()

    async def _stream(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.body_iterator:
            data = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
            await send({"type": "http.response.body", "body": data, "more_body": True})
        self._finishing = True  # a disconnect from here on is the answer's own end
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _stop(self, task: asyncio.Task[Any], watcher: asyncio.Future[bool]) -> None:
        if _left(watcher) and not self._finishing:
            task.cancel()


async def _client_gone(receive: Receive, body_read: asyncio.Event) -> bool:
    """True once the client has gone, listened for after the request body was read."""
    await body_read.wait()
    while (await receive())["type"] != "http.disconnect":
        pass
    return True


def _left(watcher: asyncio.Future[bool]) -> bool:
    return watcher.done() and not watcher.cancelled() and watcher.exception() is None
