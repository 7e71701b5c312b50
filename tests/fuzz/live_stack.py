"""The three services as real uvicorn servers on loopback, for synchronous HTTP clients.

The gateway's own suite runs its servers on pytest-asyncio's session loop, which only turns
while an async test runs. Schemathesis and a generated synchronous client block the calling
thread, so here the whole stack gets an event loop of its own in a background thread: registry
and calculator on throwaway PostgreSQL databases, and the gateway in front of them, all three
served over real HTTP by `testkit.live_server`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass

from calculator.config import Settings as CalculatorSettings
from calculator.main import create_app as create_calculator
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway
from pydantic import SecretStr
from registry.config import Settings as RegistrySettings
from registry.main import create_app as create_registry
from testkit import create_database, drop_database, live_server

ADMIN_KEY = "sk_test-admin-key-for-the-fuzz-suite-0000000000"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
RATE_LIMIT = "1000000/minute"


@dataclass(frozen=True)
class LiveStack:
    gateway_url: str
    registry_url: str
    calculator_url: str
    admin_key: str

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


async def _serve(ready: Future[LiveStack], stop: asyncio.Event) -> None:
    databases: list[str] = []

    async def database(prefix: str) -> str:
        url = await create_database(prefix)
        databases.append(url)
        return url

    try:
        async with AsyncExitStack() as stack:
            registry = create_registry(RegistrySettings(database_url=await database("registry")))
            registry_url = await stack.enter_async_context(live_server(registry))
            calculator = create_calculator(
                CalculatorSettings(
                    database_url=await database("calculator"), registry_url=registry_url
                )
            )
            calculator_url = await stack.enter_async_context(live_server(calculator))
            gateway = create_gateway(
                GatewaySettings(
                    database_url=await database("gateway"),
                    registry_url=registry_url,
                    calculator_url=calculator_url,
                    admin_key=SecretStr(ADMIN_KEY),
                    key_cache_seconds=0,
                    # Fuzzing and the client round trip are about the API, not the tenant's
                    # request budget: a limit they never reach keeps 429s out of the answers.
                    rate_limit=RATE_LIMIT,
                )
            )
            gateway_url = await stack.enter_async_context(live_server(gateway))
            ready.set_result(LiveStack(gateway_url, registry_url, calculator_url, ADMIN_KEY))
            await stop.wait()
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(exc)
        raise
    finally:
        for url in databases:
            await drop_database(url)


@contextmanager
def live_stack() -> Iterator[LiveStack]:
    """Start registry, calculator and gateway in a background thread; stop them afterwards."""
    ready: Future[LiveStack] = Future()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(_serve(ready, stop))
        except BaseException as exc:
            failure.append(exc)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="live-stack", daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=START_TIMEOUT)
    finally:
        with suppress(RuntimeError):  # the loop is closed already: the stack has stopped
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("the live stack did not stop in time")
        if failure and ready.done() and ready.exception() is None:
            raise RuntimeError("the live stack failed while serving") from failure[0]
