"""A revoked key or a disabled tenant, told to every gateway process at once.

Each process remembers the keys it has resolved for a few seconds (`principal.Authenticator`).
On PostgreSQL, the transaction that revokes a key or disables a tenant also sends a
notification on `CHANNEL`, which PostgreSQL delivers when it commits; every gateway process
listens on a connection of its own and forgets its remembered keys when one arrives. Workers
of one gateway and replicas behind a balancer share the database, so all of them refuse the key
from the next request on. While a process's listening connection is down, the cache's lifetime
still bounds how long a key outlives its revocation there; a reconnected listener forgets
everything, for it may have missed a notification meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

CHANNEL = "gateway_keys_changed"
# A lost listening connection is opened again after this long, and then twice as long, up to
# the most.
RECONNECT_SECONDS = 0.5
RECONNECT_MOST_SECONDS = 10.0


async def announce(session: AsyncSession) -> None:
    """Tell every gateway process, once this session's transaction commits, that a key or a
    tenant stopped working. On SQLite, which one local process uses, there is no one to tell."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"NOTIFY {CHANNEL}"))


class RevocationListener:
    """Calls `forget` whenever any process announces a revocation, and on every (re)connection."""

    def __init__(self, dsn: str, forget: Callable[[], None]) -> None:
        self._dsn = dsn
        self._forget = forget
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        """Listen from now until `aclose`, connecting again whenever the connection is lost."""
        self._task = asyncio.create_task(self._listen())

    async def aclose(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        wait = RECONNECT_SECONDS
        while True:
            try:
                await self._listen_once()
                wait = RECONNECT_SECONDS
                log.warning("revocation listener lost its connection; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning(
                    "revocation listener cannot connect; keys are forgotten by age meanwhile",
                    extra={"error": type(exc).__name__, "retry_in": wait},
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_MOST_SECONDS)

    async def _listen_once(self) -> None:
        """Listen on one connection until it is lost."""
        lost = asyncio.Event()
        connection = await asyncpg.connect(self._dsn, timeout=5)
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANNEL, lambda *_: self._forget())
            self._forget()  # what was announced while no one listened
            self.listening.set()
            await lost.wait()
        finally:
            self.listening.clear()
            if not connection.is_closed():
                connection.terminate()
