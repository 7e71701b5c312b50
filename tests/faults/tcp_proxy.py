"""A TCP proxy on loopback that a test can cut and restore, to fail a dependency on demand.

Put it between a service and PostgreSQL and `cut()` does what a database restart does to the
service: every open connection drops at once, and new connections are refused (the listening
socket is closed, so a connect gets RST) until `restore()` listens on the same port again.
`hang()` makes a dependency that hangs instead: open connections drop, and every new one is
accepted and read but never forwarded nor answered, until `restore()`.
The machine's PostgreSQL server itself is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

CHUNK = 64 * 1024


class TcpProxy:
    """Forward every connection on a loopback port to a target host and port."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.accepted = 0
        self.dropped = 0
        self.held = 0  # connections taken while hanging
        self._server: asyncio.Server | None = None
        self._cut = False
        self._hanging = False
        self._silent: set[asyncio.StreamWriter] = set()
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        """How many client connections are being forwarded right now."""
        return len(self._pairs)

    @property
    def is_cut(self) -> bool:
        return self._cut

    async def start(self) -> TcpProxy:
        """Listen on a free loopback port (kept for every later `restore()`)."""
        await self._listen()
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True, backlog=256
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> int:
        """Close every open connection and refuse new ones; return how many were dropped."""
        self._cut = True
        if self._server is not None:
            self._server.close()
            self._server = None
        return await self._drop()

    async def hang(self) -> int:
        """Close every open connection, then accept new ones and never answer them; return how
        many were dropped (a pooled connection would otherwise still get through)."""
        self._hanging = True
        return await self._drop()

    async def restore(self) -> None:
        """Accept and forward connections again, on the same port."""
        if self._hanging:
            self._hanging = False
            await self._drop()
        if self._server is not None:
            return
        self._cut = False
        await self._listen()

    async def _drop(self) -> int:
        pairs = list(self._pairs)
        self._pairs.clear()
        for client, upstream in pairs:
            _abort(client)
            _abort(upstream)
        for silent in list(self._silent):
            _abort(silent)
        self.dropped += len(pairs)
        await asyncio.sleep(0)  # let the pumps see their transports go
        return len(pairs)

    async def close(self) -> None:
        """Stop for good: no listener, no connection, no task left behind."""
        await self.cut()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(client_reader, client)
        finally:
            self._tasks.discard(task)

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        if self._cut:
            _abort(client)
            return
        if self._hanging:
            await self._hold(client_reader, client)
            return
        try:
            upstream_reader, upstream = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), timeout=5
            )
        except (OSError, TimeoutError):
            _abort(client)
            return
        if self._cut:  # cut while connecting
            _abort(client)
            _abort(upstream)
            return
        self.accepted += 1
        pair = (client, upstream)
        self._pairs.add(pair)
        _no_delay(client)
        _no_delay(upstream)
        try:
            pumps = [
                asyncio.ensure_future(_pump(client_reader, upstream)),
                asyncio.ensure_future(_pump(upstream_reader, client)),
            ]
            try:
                # When either side ends, the whole connection ends (no half-open state).
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._pairs.discard(pair)
            for writer in pair:
                writer.close()

    async def _hold(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        """Read whatever comes and answer nothing, until the client or a drop ends it."""
        self.held += 1
        self._silent.add(client)
        try:
            with contextlib.suppress(OSError):
                while await reader.read(CHUNK):
                    pass
        finally:
            self._silent.discard(client)
            client.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Drop a connection at once (RST), as a dying server's connections drop."""
    writer.transport.abort()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
