"""The ceiling of the stack: a bare FastAPI echo, and a proxy in front of it with our client.

uvicorn --factory echo_apps:echo          # one hop
uvicorn --factory echo_apps:proxy         # two hops (ECHO_URL names the echo server)

With ECHO_COLLECTOR=services, both run with the garbage collector thresholds our services set
(`subsidy_common.app.COLLECTOR_THRESHOLDS`) instead of CPython's defaults.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import Response
from subsidy_common.app import COLLECTOR_THRESHOLDS
from subsidy_common.downstream import downstream_client


def _collector() -> None:
    if os.environ.get("ECHO_COLLECTOR") == "services":
        gc.set_threshold(*COLLECTOR_THRESHOLDS)


def echo() -> FastAPI:
    """POST /echo returns its body."""
    _collector()
    app = FastAPI()

    @app.post("/echo")
    async def handler(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    return app


def proxy() -> FastAPI:
    """POST /echo forwards the body to the echo server as the gateway relays a request."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = downstream_client(os.environ["ECHO_URL"])
        yield
        await app.state.client.aclose()

    _collector()
    app = FastAPI(lifespan=lifespan)

    @app.post("/echo")
    async def handler(request: Request) -> Response:
        upstream = await request.app.state.client.relay(
            "POST", "/echo", content=await request.body(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        return Response(
            upstream.content, status_code=upstream.status_code, media_type="application/json"
        )

    return app
