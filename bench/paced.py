"""Load at a fixed rate (open loop), for latency at a given throughput.

wrk sends as fast as answers come back, so its percentiles describe a saturated server. Here
requests leave on a fixed schedule whatever the server does, and each latency is counted from
the moment its request was due, not from when it was sent (no coordinated omission).

The load shares the machine's two cores with the services it measures, so the client is kept
as light as wrk: each request's bytes are made once, answers are read by httptools (the parser
uvicorn uses) on plain asyncio connections kept open, on uvloop as the services are. Through
aiohttp's client the same load cost 0.28–0.30 ms of the client's CPU per request, about half
what the gateway and the calculator spend on it, taken from the same cores (bench/RESULTS.md,
eleventh series). A first second at the same rate opens the client's connections and is not
counted, as wrk2 leaves out its calibration period. The client's garbage collector is off from
the first request to the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import statistics
import time
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httptools
import uvloop

WARM_UP_SECONDS = 1.0
TICK_SECONDS = 0.001
ANSWER_SECONDS = 30.0  # after the last request is due, how long answers are waited for


class _Connection(asyncio.Protocol):
    """One kept-open connection, one request at a time."""

    def __init__(self, load: _Load) -> None:
        self._load = load
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.due = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._load.failed(self)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._load.lost(self)

    def on_message_complete(self) -> None:
        self._load.answered(self, self._parser.get_status_code())

    def send(self, request: bytes, due: float) -> None:
        self.due = due
        assert self._transport is not None
        self._transport.write(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _Load:
    """Requests sent on schedule over at most `limit` connections; latencies from when due."""

    def __init__(self, host: str, port: int, request: bytes, limit: int) -> None:
        self._host, self._port, self._request, self._limit = host, port, request, limit
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._opening: set[asyncio.Task[None]] = set()  # the loop holds tasks weakly
        self._waiting: deque[float] = deque()
        self.latencies: list[float] = []
        self.failures = 0
        self.outstanding = 0
        self.drained = asyncio.Event()  # set whenever no request is outstanding

    def fire(self, due: float) -> None:
        self.outstanding += 1
        self.drained.clear()
        if self._idle:
            self._start(self._idle.pop(), due)
            return
        self._waiting.append(due)
        self._open_if_room()

    def _open_if_room(self) -> None:
        if self._waiting and len(self._busy) + len(self._opening) < self._limit:
            task = asyncio.get_running_loop().create_task(self._open())
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self), self._host, self._port
            )
        except OSError:
            if self._waiting:
                self._finish(self._waiting.popleft(), failed=True)
            return
        self._next(connection)

    def _start(self, connection: _Connection, due: float) -> None:
        self._busy.add(connection)
        connection.send(self._request, due)

    def _next(self, connection: _Connection) -> None:
        if self._waiting:
            self._start(connection, self._waiting.popleft())
        else:
            self._busy.discard(connection)
            self._idle.append(connection)

    def _finish(self, due: float, *, failed: bool) -> None:
        self.latencies.append(time.perf_counter() - due)
        self.failures += failed
        self.outstanding -= 1
        if not self.outstanding:
            self.drained.set()

    def answered(self, connection: _Connection, status: int) -> None:
        self._finish(connection.due, failed=status >= 300)
        self._next(connection)

    def failed(self, connection: _Connection) -> None:
        if connection in self._busy:
            self._busy.discard(connection)
            self._finish(connection.due, failed=True)

    def lost(self, connection: _Connection) -> None:
        self.failed(connection)
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
        self._open_if_room()

    def give_up(self) -> None:
        """Count every request still unanswered as failed."""
        for due in [*self._waiting, *(c.due for c in self._busy)]:
            self._finish(due, failed=True)
        self._waiting.clear()
        self._busy.clear()

    def close(self) -> None:
        for connection in [*self._idle, *self._busy]:
            connection.close()


def _request(url: str, headers: dict[str, str], body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _paced(
    url: str, headers: dict[str, str], body: bytes, rate: int, seconds: float, limit: int
) -> dict[str, float]:
    host, port, request = _request(url, headers, body)
    load = _Load(host, port, request, limit)
    try:
        with _no_collector():
            await _schedule(load, rate, WARM_UP_SECONDS)
            return await _schedule(load, rate, seconds)
    finally:
        load.close()


@contextlib.contextmanager
def _no_collector() -> Iterator[None]:
    """The client's own garbage collector kept out of the measurement.

    A full collection in the process that sends walks everything it holds (in
    `bench/calculations.py`, every earlier round's results too) while no request leaves and no
    answer is read: the requests due meanwhile count its pause as the server's latency.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def _schedule(load: _Load, rate: int, seconds: float) -> dict[str, float]:
    load.latencies, load.failures = [], 0
    started, cpu = time.perf_counter(), time.process_time()
    total = int(rate * seconds)
    n = 0
    while n < total:
        now = time.perf_counter()
        while n < total and started + n / rate <= now:  # every request due by now leaves now
            load.fire(started + n / rate)
            n += 1
        if n < total:
            # The loop's timers count whole milliseconds: a shorter sleep returns at once, and
            # waiting for the next request in such sleeps took as much CPU as the gateway.
            # A request may leave up to a tick late; its latency still counts from when due.
            await asyncio.sleep(max(started + n / rate - time.perf_counter(), TICK_SECONDS))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(load.drained.wait(), ANSWER_SECONDS)
    load.give_up()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    ordered = sorted(load.latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {
        "rps": len(ordered) / elapsed,
        "p50": percentile(50),
        "p99": percentile(99),
        "p99.9": percentile(99.9),
        "max": ordered[-1] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
        "non_2xx": float(load.failures),
        "client_cpu_ms": cpu / len(ordered) * 1000,
    }


def paced(
    url: str, key: str, body: dict[str, Any], rate: int, seconds: float, limit: int = 256
) -> dict[str, float]:
    """POST `body` at `rate` requests per second for `seconds`; latency percentiles in ms."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    payload = json.dumps(body, ensure_ascii=False).encode()
    return uvloop.run(_paced(url, headers, payload, rate, seconds, limit))
