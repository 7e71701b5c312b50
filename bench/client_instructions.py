"""Instructions the shared downstream client spends per request, counted with callgrind.

    .venv/bin/python bench/client_instructions.py [--through httpx|relay]

Starts an aiohttp echo server in a process of its own, then runs this script twice under
valgrind's callgrind as the client: `subsidy_common.downstream.downstream_client` posting a
calculation-sized body 100 and 1,100 times after the same start, through httpx's API (`post`)
or as the gateway relays a request (`relay`). The difference per request is
the client side of one hop, the same from run to run whatever else the machine is doing. Takes a
few minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import free_port, instructions_per_unit

BODY = b'{"applicant": {"id": "91510500MA62B8XY4F", "kind": "enterprise"}}' * 4


def serve(port: int) -> None:
    """An echo server: POST /echo answers its body."""
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/echo", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def post(port: int, requests: int, through: str) -> None:
    """Post the body `requests` times after a warm-up of 50."""
    import uvloop
    from subsidy_common.downstream import downstream_client

    async def run() -> None:
        client = downstream_client(f"http://127.0.0.1:{port}")
        headers = {"Content-Type": "application/json"}
        for _ in range(50 + requests):
            if through == "relay":
                response = await client.relay("POST", "/echo", content=BODY, headers=headers)
            else:
                response = await client.post("/echo", content=BODY, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"the echo server answered {response.status_code}")
        await client.aclose()

    uvloop.run(run())


def count(through: str) -> None:
    """Serve, then count the client's instructions for 100 and 1,100 requests."""
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        time.sleep(2)
        per_request = instructions_per_unit(
            lambda requests: [
                sys.executable,
                __file__,
                "--post",
                str(port),
                str(requests),
                "--through",
                through,
            ]
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"{per_request:,.0f} instructions per request, client side, through {through}")


def main() -> None:
    """Count, or play one of the two parts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--post", type=int, nargs=2, metavar=("PORT", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--through", choices=("httpx", "relay"), default="httpx")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
    elif args.post:
        post(*args.post, args.through)
    else:
        count(args.through)


if __name__ == "__main__":
    main()
