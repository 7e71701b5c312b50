"""Single calculations through the gateway against the stack's own two-hop ceiling, one run.

    .venv/bin/python bench/gateway.py [--seconds 10] [--connections 64]

Starts, as separate processes on loopback: a bare FastAPI echo and a proxy in front of it using
the gateway's HTTP client (the ceiling), then the three services on throwaway PostgreSQL
databases. Load comes from wrk (a second process), bounded in time. Prints requests per second
and latency percentiles for each, and the ratio of the calculation to the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from testkit import create_database, drop_database, free_port  # noqa: E402

CALCULATION = {
    "applicant": {"id": "91510500MA62B8XY4F", "kind": "enterprise", "name": "泸州示例科技有限公司",
                  "region": "510502"},
    "events": [{"matter": "patent.invention.granted", "date": "2016-05-10",
                "subject": "ZL201510000001.1"}],
}  # fmt: skip
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.body = [[{body}]]
"""


def wait(url: str, timeout: float = 60) -> None:
    """Until the URL answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


@contextmanager
def processes(*commands: tuple[list[str], dict[str, str]]) -> Iterator[None]:
    """Run commands in the background for the duration of a block."""
    started = [
        subprocess.Popen(c, env={**os.environ, **e}, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        for c, e in commands
    ]  # fmt: skip
    try:
        yield
    finally:
        for p in started:
            p.terminate()
        for p in started:
            p.wait(timeout=30)


def uvicorn(factory: str, port: int, app_dir: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--port", str(port),
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    return [*command, "--app-dir", app_dir] if app_dir else command


def load(
    url: str, key: str, body: dict[str, object], seconds: int, connections: int
) -> dict[str, float]:
    """Run wrk against a POST URL; return requests per second and latency percentiles (ms)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(key=key, body=json.dumps(body, ensure_ascii=False)))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": percentile("50"), "p99": percentile("99"),
            "non_2xx": float(errors.group(1)) if errors else 0.0}  # fmt: skip


def main() -> None:
    """Measure the ceiling and the calculation in one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    echo_port, proxy_port = free_port(), free_port()
    bench_dir = str(ROOT / "bench")
    with processes(
        (uvicorn("echo_apps:echo", echo_port, bench_dir), {}),
        (
            uvicorn("echo_apps:proxy", proxy_port, bench_dir),
            {"ECHO_URL": f"http://127.0.0.1:{echo_port}"},
        ),
    ):
        time.sleep(3)
        results["echo, one hop"] = load(f"http://127.0.0.1:{echo_port}/echo", "-", CALCULATION,
                                        args.seconds, args.connections)  # fmt: skip
        results["echo, two hops"] = load(f"http://127.0.0.1:{proxy_port}/echo", "-", CALCULATION,
                                         args.seconds, args.connections)  # fmt: skip
    urls = {name: asyncio.run(create_database(f"bench_{name}")) for name in ("r", "c", "g")}
    key = "sk_bench-admin-key-0123456789abcdef0123456789"
    ports = {name: free_port() for name in ("gateway", "registry", "calculator")}
    env = {
        "SUBSIDY_ADMIN_KEY": key, "SUBSIDY_DATA_DIR": tempfile.mkdtemp(),
        "REGISTRY_DATABASE_URL": urls["r"], "CALCULATOR_DATABASE_URL": urls["c"],
        "GATEWAY_DATABASE_URL": urls["g"], "GATEWAY_RATE_LIMIT": "100000000/minute",
        "SUBSIDY_GATEWAY_PORT": str(ports["gateway"]), "SUBSIDY_REGISTRY_PORT": str(ports["registry"]),
        "SUBSIDY_CALCULATOR_PORT": str(ports["calculator"]),
        "REGISTRY_LOG_LEVEL": "WARNING", "CALCULATOR_LOG_LEVEL": "WARNING", "GATEWAY_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    started = time.monotonic()
    try:
        with processes(([sys.executable, "scripts/run.py"], env)):
            wait(f"http://127.0.0.1:{ports['gateway']}/readyz")
            ready = time.monotonic() - started
            gateway = f"http://127.0.0.1:{ports['gateway']}/v1/calculations"
            load(gateway, key, CALCULATION, 2, args.connections)  # warm-up
            results["calculation via gateway"] = load(
                gateway, key, CALCULATION, args.seconds, args.connections
            )
    finally:
        for url in urls.values():
            asyncio.run(drop_database(url))
    ceiling = results["echo, two hops"]["rps"]
    print(
        f"{args.connections} connections, {args.seconds} s each, wrk -t2; ready after start: {ready:.1f} s"
    )
    print(f"{'what':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs 2-hop':>9}")
    for name, r in results.items():
        print(f"{name:28} {r['rps']:9.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['rps'] / ceiling:8.0%}"
              + (f"  ({r['non_2xx']:.0f} non-2xx)" if r["non_2xx"] else ""))  # fmt: skip


if __name__ == "__main__":
    main()
