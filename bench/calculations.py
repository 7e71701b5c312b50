"""Single calculations through the gateway against the stack's own two-hop ceiling and against
the peer, one run.

    .venv/bin/python bench/calculations.py [--seconds 10] [--connections 64] [--rounds 3]
        [--no-peer]

Starts, as separate processes on loopback: a bare FastAPI echo and a proxy in front of it using
the gateway's HTTP client (the ceiling), once as they come and once with the garbage collector
thresholds our services set (for reference), and the three services on throwaway PostgreSQL
databases, and the peer: OpenFisca's Web API serving one person per request, as
`bench/openfisca.py` serves and loads it. Load comes from wrk (a second process), bounded in time,
on one target at a time, every target once per round. Prints requests per second and latency
percentiles for each, and each one's ratio to the ceiling and to the peer, round by round.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openfisca
from harness import CALCULATION, ROOT, CpuMeter, free_port, load, processes, system, uvicorn
from paced import paced

PACED_RATE = 1000
PEER = "OpenFisca, 1 person"


def measured(
    meter: CpuMeter, url: str, key: str, seconds: int, connections: int
) -> dict[str, float]:
    """wrk's figures, and the CPU milliseconds each process spent per request."""
    meter.start()
    result = load(url, key, CALCULATION, seconds, connections)
    spent = meter.stop()
    return result | {f"cpu {name}": 1000 * s / result["requests"] for name, s in spent.items()}


@contextlib.contextmanager
def peer(seconds: int, connections: int) -> Iterator[Callable[[], dict[str, float]]]:
    """OpenFisca's Web API served; yields one load of it, in the figures `measured` gives."""
    openfisca.environment()
    with openfisca.serve(2) as (url, master, _), tempfile.TemporaryDirectory() as scripts:
        calculate = f"{url}/calculate"
        openfisca.check(calculate, 1)

        def one_load() -> dict[str, float]:
            run = openfisca.wrk(calculate, 1, seconds, connections, master, Path(scripts))
            return {"rps": run.rps, "p50": run.p50_ms, "p99": run.p99_ms,
                    "non_2xx": run.errors, "requests": run.requests,
                    "cpu openfisca": run.cpu_ms_per_request}  # fmt: skip

        yield one_load


def measure(
    seconds: int, connections: int, rounds: int, with_peer: bool = True
) -> tuple[dict[str, list[dict[str, float]]], float]:
    """The ceilings and the calculation, loaded in turn, `rounds` times over; then the
    calculation at a fixed 1,000 per second once; and the time from start to ready.

    Every server is started first and stays up: on a shared machine whose speed drifts by tens
    of percent within minutes, only loads taken close together compare, so each round loads
    every target once, one after the other.
    """
    runs: dict[str, list[dict[str, float]]] = {}
    bench_dir = str(ROOT / "bench")
    ports = {collector: (free_port(), free_port()) for collector in ("python", "services")}
    echoes = [
        command
        for collector, (echo_port, proxy_port) in ports.items()
        for command in (
            (uvicorn("echo_apps:echo", echo_port, bench_dir), {"ECHO_COLLECTOR": collector}),
            (
                uvicorn("echo_apps:proxy", proxy_port, bench_dir),
                {"ECHO_URL": f"http://127.0.0.1:{echo_port}", "ECHO_COLLECTOR": collector},
            ),
        )
    ]
    with (
        processes(*echoes),
        system() as (gateway_url, key, ready, meter),
        peer(seconds, connections) if with_peer else contextlib.nullcontext() as load_peer,
    ):
        gateway = f"{gateway_url}/v1/calculations"
        (echo, proxy), (tuned_echo, tuned_proxy) = ports["python"], ports["services"]
        targets = {
            "echo, one hop": (f"http://127.0.0.1:{echo}/echo", "-", {"echo": echo}),
            "echo, two hops": (
                f"http://127.0.0.1:{proxy}/echo",
                "-",
                {"proxy": proxy, "echo": echo},
            ),
            "echo, two hops, services' collector": (
                f"http://127.0.0.1:{tuned_proxy}/echo",
                "-",
                {"proxy": tuned_proxy, "echo": tuned_echo},
            ),
            "calculation via gateway": (gateway, key, None),
        }
        for url, target_key, _ in targets.values():
            load(url, target_key, CALCULATION, 2, connections)  # warm-up
        for _ in range(rounds):
            for name, (url, target_key, target_ports) in targets.items():
                target_meter = meter if target_ports is None else CpuMeter(target_ports)
                runs.setdefault(name, []).append(
                    measured(target_meter, url, target_key, seconds, connections)
                )
            if load_peer is not None:
                runs.setdefault(PEER, []).append(load_peer())
        runs[f"calculation at {PACED_RATE}/s"] = [
            paced(gateway, key, CALCULATION, PACED_RATE, seconds)
        ]
    return runs, ready


def main() -> None:
    """Measure the ceilings and the calculation in one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="leave OpenFisca out")
    args = parser.parse_args()
    runs, ready = measure(args.seconds, args.connections, args.rounds, not args.no_peer)
    ceiling, tuned = runs["echo, two hops"], runs["echo, two hops, services' collector"]
    peer_runs = runs.get(PEER)
    print(f"{args.connections} connections, {args.seconds} s each, wrk -t2, {args.rounds} rounds; "
          f"ready after start: {ready:.1f} s")  # fmt: skip
    print("Each figure is the median of the rounds; a ratio is the median of the rounds' ratios.")
    print(f"{'what':38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs 2-hop':>9} {'vs tuned':>9}"
          f" {'vs peer':>8}  req/s in each round")  # fmt: skip
    for name, results in runs.items():
        rps = [r["rps"] for r in results]
        ratio = statistics.median(r / c["rps"] for r, c in zip(rps, ceiling, strict=False))
        to_tuned = statistics.median(r / t["rps"] for r, t in zip(rps, tuned, strict=False))
        to_peer = (
            f"{statistics.median(r / p['rps'] for r, p in zip(rps, peer_runs, strict=False)):7.2f}×"
            if peer_runs else f"{'':8}"
        )  # fmt: skip
        non_2xx = sum(r["non_2xx"] for r in results)
        print(f"{name:38} {statistics.median(rps):9.0f} {_median(results, 'p50'):8.1f} "
              f"{_median(results, 'p99'):8.1f} {ratio:8.0%} {to_tuned:8.0%} {to_peer}  "
              + " / ".join(f"{r:.0f}" for r in rps)
              + (f"  ({non_2xx:.0f} non-2xx)" if non_2xx else ""))  # fmt: skip
    print("CPU per request (ms, median of the rounds):")
    for name, results in runs.items():
        cpu = {
            k.removeprefix("cpu "): _median(results, k)
            for k in results[0]
            if k.startswith("cpu ") and _median(results, k) > 0.005
        }
        if cpu:
            print(f"  {name:36} " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))

    (fixed,) = runs[f"calculation at {PACED_RATE}/s"]
    print(f"At a fixed {PACED_RATE}/s, after a first second not counted: p99.9 "
          f"{fixed['p99.9']:.1f} ms, slowest {fixed['max']:.1f} ms; the client's CPU "
          f"{fixed['client_cpu_ms']:.3f} ms per request.")  # fmt: skip


def _median(results: list[dict[str, float]], field: str) -> float:
    return statistics.median(r[field] for r in results)


if __name__ == "__main__":
    main()
