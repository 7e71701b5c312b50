"""Single calculations through the gateway against the stack's own two-hop ceiling, one run.

    .venv/bin/python bench/calculations.py [--seconds 10] [--connections 64]

Starts, as separate processes on loopback: a bare FastAPI echo and a proxy in front of it using
the gateway's HTTP client (the ceiling), once as they come and once with the garbage collector
thresholds our services set (for reference), then the three services on throwaway PostgreSQL
databases. Load comes from wrk (a second process), bounded in time. Prints requests per second
and latency percentiles for each, and the ratio of the calculation to the ceiling.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CALCULATION, ROOT, CpuMeter, free_port, load, processes, system, uvicorn
from paced import paced

PACED_RATE = 1000


def measured(
    meter: CpuMeter, url: str, key: str, seconds: int, connections: int
) -> dict[str, float]:
    """wrk's figures, and the CPU milliseconds each process spent per request."""
    meter.start()
    result = load(url, key, CALCULATION, seconds, connections)
    spent = meter.stop()
    return result | {f"cpu {name}": 1000 * s / result["requests"] for name, s in spent.items()}


def measure(seconds: int, connections: int) -> tuple[dict[str, dict[str, float]], float]:
    """The ceiling, the calculation at full load and at a fixed 1,000 per second; and ready time."""
    results: dict[str, dict[str, float]] = {}
    bench_dir = str(ROOT / "bench")
    for collector, label in (("python", ""), ("services", ", services' collector")):
        echo_port, proxy_port = free_port(), free_port()
        env = {"ECHO_COLLECTOR": collector}
        with processes(
            (uvicorn("echo_apps:echo", echo_port, bench_dir), env),
            (
                uvicorn("echo_apps:proxy", proxy_port, bench_dir),
                {"ECHO_URL": f"http://127.0.0.1:{echo_port}", **env},
            ),
        ):
            time.sleep(3)
            meter = CpuMeter({"proxy": proxy_port, "echo": echo_port})
            if not label:
                results["echo, one hop"] = measured(
                    meter, f"http://127.0.0.1:{echo_port}/echo", "-", seconds, connections
                )
            results[f"echo, two hops{label}"] = measured(
                meter, f"http://127.0.0.1:{proxy_port}/echo", "-", seconds, connections
            )
    with system() as (gateway_url, key, ready, meter):
        gateway = f"{gateway_url}/v1/calculations"
        load(gateway, key, CALCULATION, 2, connections)  # warm-up
        results["calculation via gateway"] = measured(meter, gateway, key, seconds, connections)
        results[f"calculation at {PACED_RATE}/s"] = paced(
            gateway, key, CALCULATION, PACED_RATE, seconds
        )
    return results, ready


def main() -> None:
    """Measure the ceiling and the calculation in one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    results, ready = measure(args.seconds, args.connections)
    ceiling = results["echo, two hops"]["rps"]
    tuned = results["echo, two hops, services' collector"]["rps"]
    print(
        f"{args.connections} connections, {args.seconds} s each, wrk -t2; ready after start: {ready:.1f} s"
    )
    print(f"{'what':38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs 2-hop':>9} {'vs tuned':>9}")
    for name, r in results.items():
        print(f"{name:38} {r['rps']:9.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['rps'] / ceiling:8.0%}"
              f" {r['rps'] / tuned:8.0%}"
              + (f"  ({r['non_2xx']:.0f} non-2xx)" if r["non_2xx"] else ""))  # fmt: skip
    print("CPU per request (ms):")
    for name, r in results.items():
        cpu = {
            k.removeprefix("cpu "): v for k, v in r.items() if k.startswith("cpu ") and v > 0.005
        }
        if cpu:
            print(f"  {name:36} " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))


if __name__ == "__main__":
    main()
