"""Helpers for the tests: throwaway PostgreSQL databases, live servers, app lifespans."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import asyncpg
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from subsidy_common.serving import GuardedHttpToolsProtocol

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    """The server URL the suite creates its throwaway databases on."""
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def dsn(url: str) -> str:
    """A plain libpq URL for asyncpg from any SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(prefix: str) -> str:
    """Create an empty database and return its SQLAlchemy async URL."""
    name = f"t_{prefix}_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(dsn(admin_url()))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return (
        make_url(admin_url())
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


async def drop_database(url: str) -> None:
    """Drop a database made by `create_database`, whoever is still connected."""
    name = make_url(url).database
    connection = await asyncpg.connect(dsn(admin_url()))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def script(path: Path, name: str) -> ModuleType:
    """A script of the repository (scripts/run.py, examples/payout.py) loaded as a module named
    `name`, kept in sys.modules: dataclasses look their module up there as they are built."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """`count` different loopback ports that nothing listens on right now: each is held while
    the next is chosen (two ports chosen one after the other may be the same)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_ports_in_a_row(count: int) -> list[int]:
    """`count` consecutive loopback ports that nothing listens on right now."""
    while True:
        first = free_port()
        ports = list(range(first, first + count))
        try:
            with contextlib.ExitStack() as held:
                for port in ports:
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return ports


@asynccontextmanager
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app with uvicorn on a loopback port, for real HTTP between services."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        http=GuardedHttpToolsProtocol,  # as the services are served
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped while starting")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class NeverAnswering:
    """A server that takes connections and never answers: its URL, and how many it took."""

    url: str
    connections: int = 0


@asynccontextmanager
async def never_answering() -> AsyncIterator[NeverAnswering]:
    """A dependency that hangs: a loopback server that accepts every connection, reads what is
    sent and never answers. Its connections are dropped when the block ends."""
    held: set[asyncio.StreamWriter] = set()
    silent = NeverAnswering("")

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.connections += 1
        held.add(writer)
        try:
            with contextlib.suppress(OSError):
                while await reader.read(64 * 1024):
                    pass
        finally:
            held.discard(writer)
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    silent.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield silent
    finally:
        server.close()
        for writer in list(held):
            writer.transport.abort()
        await server.wait_closed()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run an app's lifespan (migrations, reference data) around a block."""
    async with app.router.lifespan_context(app):
        yield app
