"""The gateway's own cost for one calculation or one claim, without the network: its ASGI app
called in process, the forward to the calculator answered from memory.

    .venv/bin/python bench/gateway_inprocess.py [--route calculations|claims] [--requests 3000]
        [--rounds 5]
    .venv/bin/python bench/gateway_inprocess.py [--route ...] --instructions

Prints µs per request for each round. Timing on a shared machine drifts by tens of percent;
`--instructions` counts instead: it runs the script twice under valgrind's callgrind (100 and
1,100 requests after the same start) and prints the difference per request, which is the same
from run to run whatever else the machine is doing. That takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CALCULATION, instructions_per_unit

KEY = "sk_bench-admin-key-0123456789abcdef0123456789"
BODIES = {
    "calculations": CALCULATION,
    "claims": {"applicant": CALCULATION["applicant"], "event": CALCULATION["events"][0]},  # type: ignore[index]
}
ANSWER = json.dumps({"registry_version": "bench", "total": "3000.00", "results": []}).encode()


async def run(route: str, requests: int, rounds: int) -> None:
    os.environ.update(
        SUBSIDY_DATA_DIR=tempfile.mkdtemp(), SUBSIDY_ADMIN_KEY=KEY,
        GATEWAY_RATE_LIMIT="100000000/minute", GATEWAY_LOG_LEVEL="WARNING",
    )  # fmt: skip
    from gateway.clients.downstream import Downstream
    from gateway.main import create_app
    from starlette.responses import Response

    async def from_memory(self: Downstream, *args: Any, **kwargs: Any) -> Response:
        return Response(ANSWER, media_type="application/json")

    Downstream.forward = from_memory  # type: ignore[method-assign]
    app = create_app()
    body = json.dumps(BODIES[route], ensure_ascii=False).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": f"/v1/{route}", "raw_path": f"/v1/{route}".encode(),
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2), "app": app,
        "headers": [
            (b"host", b"gateway"), (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {KEY}".encode()), (b"idempotency-key", b"bench-1"),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async with app.router.lifespan_context(app):
        for _ in range(requests if rounds == 0 else 200):
            await app(dict(scope, state={}), receive, send)
        if statuses[-1] not in (200, 201):
            raise SystemExit(f"the gateway answered {statuses[-1]}")
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(requests):
                await app(dict(scope, state={}), receive, send)
            print(f"{1e6 * (time.perf_counter() - started) / requests:.0f} µs per request")


def instructions(route: str) -> None:
    """Instructions per request: two callgrind runs that differ by 1,000 requests."""
    per_request = instructions_per_unit(
        lambda requests: [sys.executable, __file__, "--route", route,
                          "--requests", str(requests), "--rounds", "0"]
    )  # fmt: skip
    print(f"{per_request:,.0f} instructions per request")


def main() -> None:
    """Time the gateway in process, or count its instructions."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--route", choices=sorted(BODIES), default="calculations")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="0: only warm up (for callgrind)")
    parser.add_argument("--instructions", action="store_true")
    args = parser.parse_args()
    if args.instructions:
        instructions(args.route)
    else:
        uvloop.run(run(args.route, args.requests, args.rounds))


if __name__ == "__main__":
    main()
