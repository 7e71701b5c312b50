"""Serving a service with uvicorn, with the bounds on a client that its HTTP protocol lacks.

uvicorn's httptools protocol waits for a request's head as long as a client keeps the connection
open, takes a head of any size, and waits for a body's next bytes for ever: a client sending a
byte now and then, or one endless header, holds a connection and its memory without a key, and
enough of them exhaust the process's file descriptors. `GuardedHttpToolsProtocol` answers such a
client and closes its connection:

- a head not complete `HEAD_SECONDS` after the connection opened, or after the first byte that
  follows the last request on a kept-alive connection (an empty line included): 408;
- a head longer than `HEAD_BYTES` (by at most one read: a header is counted as it completes,
  and an unfinished one read by read): 431;
- a body from which nothing arrives for `BODY_IDLE_SECONDS` while the service waits for it: 408
  (while the service itself holds the body back, as a streamed batch does, nothing is counted);
- the rest of a body the service answered without reading it all (a 401, a 413): it is read and
  dropped for at most `LINGER_SECONDS`, and until nothing of it comes for
  `LINGER_IDLE_SECONDS`, then the connection is closed; once the body is whole it serves the
  next request as usual. uvicorn's own protocol waited for such a body's end for ever. Closed at
  once, the unread bytes would make the kernel reset the connection, and a client still sending
  could lose the answer.

A body that keeps arriving, however slowly (a byte every 29 s), while the service waits for it
is not bounded here: its total time is not, since a streamed batch has none. The gateway asks
for a body only once its caller's key is known.

`python -m subsidy_common.serving <module>:<factory> --host … --port …` serves an application
factory with it (the images' command); `scripts/run.py` passes the protocol to `uvicorn.run`.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from subsidy_common.problems import PROBLEM_JSON, problem_body

HEAD_SECONDS = 10.0
HEAD_BYTES = 64 * 1024
BODY_IDLE_SECONDS = 30.0
LINGER_SECONDS = 30.0
LINGER_IDLE_SECONDS = 5.0
GRACEFUL_SHUTDOWN_SECONDS = 5


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for a request's head and body, and a bound
    on the head's size. Each connection has at most one timer, armed only while a head or a body
    is awaited: a request that arrives whole in one read arms none.

    A head's clock runs only while the connection has no earlier request in progress and
    reading is not paused: a pipelined head waiting behind a slow answer is not the client's
    fault. Its size counts what the parser has taken of it (the URL and each header as it
    completes) and every read in which the parser completed nothing (a header without end),
    never the earlier requests of a pipelined read.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True  # nothing received yet: the first head is awaited
        self._head_started = self.loop.time()
        self._head_bytes = 0
        self._progressed = False
        self._last_body = 0.0
        self._linger_until: float | None = None  # while the rest of an answered body is dropped
        self._watch: asyncio.TimerHandle | None = None
        self._arm_by(self._head_started + HEAD_SECONDS)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._progressed = True
        # The next request, in the read that ended a lingered body: that body's end armed the
        # keep-alive timer, which uvicorn cancels only as a read begins.
        self._unset_keepalive_if_required()
        self._head_bytes = 0
        if not self._in_head:  # the next request on a kept-alive connection
            self._in_head = True
            self._head_started = self.loop.time()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._progressed = True
        self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._progressed = True
        self._head_bytes += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._progressed = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._progressed = True
        if self._linger_until is not None:
            # The answered request's body is whole: the connection serves the next one.
            self._linger_until = None
            self.cycle.more_body = False
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_response_complete(self) -> None:
        cycle = self.cycle
        unread = cycle is not None and cycle.more_body  # answered before its body had come
        super().on_response_complete()
        if unread and not self.transport.is_closing():
            now = self.loop.time()
            self._linger_until = now + LINGER_SECONDS
            self._last_body = now
            self._arm_by(now + LINGER_IDLE_SECONDS)

    def data_received(self, data: bytes) -> None:
        self._progressed = False
        super().data_received(data)
        if self.transport.is_closing():
            return
        if not self._progressed and not self._in_head and self._between_requests():
            # Bytes the parser took as no part of a request (an empty line after one): they
            # begin the wait for the next head.
            self._in_head = True
            self._head_started = self.loop.time()
            self._head_bytes = 0
        if self._in_head:
            if not self._progressed:  # a header still without its end, however long
                self._head_bytes += len(data)
            if self._head_bytes > HEAD_BYTES:
                self._refuse(431, f"A request's head is at most {HEAD_BYTES} bytes.")
            else:
                self._arm_by(self._head_started + HEAD_SECONDS)
        elif self._awaiting_body():
            self._last_body = self.loop.time()
            if self._watch is None:
                self._arm_by(self._last_body + BODY_IDLE_SECONDS)
        elif self._linger_until is not None:
            self._last_body = self.loop.time()

    def _between_requests(self) -> bool:
        cycle = self.cycle
        return cycle is None or not cycle.more_body

    def _awaiting_body(self) -> bool:
        cycle = self.cycle
        return cycle is not None and cycle.more_body and not cycle.response_complete

    def _arm_by(self, deadline: float) -> None:
        """Have the timer fire by `deadline` at the latest."""
        if self._watch is not None:
            if self._watch.when() <= deadline:
                return
            self._watch.cancel()
        self._watch = self.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._linger_until is not None:
            deadline = min(self._linger_until, self._last_body + LINGER_IDLE_SECONDS)
            if deadline > now:
                self._arm_by(deadline)
            else:
                self.transport.close()
        elif self._in_head:
            cycle = self.cycle
            if self.flow.read_paused or (cycle is not None and not cycle.response_complete):
                # An earlier request is still being answered: the clock starts again after it.
                self._head_started = now
            deadline = self._head_started + HEAD_SECONDS
            if deadline > now:
                self._arm_by(deadline)
            elif self._head_bytes:
                self._refuse(408, f"A request's head must arrive within {HEAD_SECONDS:g} s.")
            else:  # a connection that sent no request: nothing to answer
                self.transport.close()
        elif self._awaiting_body():
            if self.flow.read_paused or self.cycle.waiting_for_100_continue:
                # The service holds the body back, or has not yet asked for it (a client that
                # sent Expect: 100-continue waits for its leave to send it): not the client.
                self._last_body = now
            deadline = self._last_body + BODY_IDLE_SECONDS
            if deadline > now:
                self._arm_by(deadline)
            elif self.cycle.response_started:
                self.transport.close()
            else:
                self._refuse(
                    408, f"Nothing of the request's body arrived for {BODY_IDLE_SECONDS:g} s."
                )

    def _refuse(self, status: int, detail: str) -> None:
        """Answer with a problem and close the connection."""
        problem = problem_body(status, detail)
        body = json.dumps(problem).encode()
        head = (
            f"HTTP/1.1 {status} {problem['title']}\r\ncontent-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()


def serve(factory: str, *, host: str, port: int, workers: int = 1, **options: object) -> None:
    """Serve an application factory (`module:function`) with the guarded protocol."""
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=GuardedHttpToolsProtocol,
        access_log=False,  # each service logs its requests itself
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **options,  # type: ignore[arg-type]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("factory", help="module:function making the application")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="believe X-Forwarded-For/-Proto from FORWARDED_ALLOW_IPS (as uvicorn's option)",
    )
    args = parser.parse_args(argv)
    serve(
        args.factory,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=args.proxy_headers,
    )


if __name__ == "__main__":
    main()
