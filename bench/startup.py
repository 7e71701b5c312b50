"""Seconds from start to ready: the three services as `make run` starts them.

    .venv/bin/python bench/startup.py [--runs 3] [--backend postgresql|sqlite|both] [--idle 0.9]

Starts `scripts/run.py` and polls the three /readyz every 20 ms; the figure is the time from
spawning run.py to the moment all three have answered 200. Cold is the first start on a fresh
database (migrations, reference data, every policy file recorded); warm is the second start on
the same database (the common case: a restart). PostgreSQL uses throwaway databases on
TEST_DATABASE_URL (as the other benches do); SQLite, the default, a temporary SUBSIDY_DATA_DIR.

Prints the median of `--runs` pairs and every figure, each with the CPU seconds the whole
process tree used from start to stop: on a shared machine other load stretches the seconds
much more than it does the CPU. `--idle` waits (up to a minute) before each start until that
share of the machine's CPU was idle over a second, and reports the share found.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, create_database, drop_database
from testkit import free_ports

SERVICES = ("registry", "calculator", "gateway")
KEY = "sk_bench-admin-key-0123456789abcdef0123456789"
TIMEOUT = 60.0
POLL = 0.02


@dataclass(frozen=True)
class Start:
    seconds: float  # spawn to all three ready
    cpu: float  # CPU seconds of run.py and the services, start to stop
    idle: float | None  # share of the machine idle just before the start


def idle_share(seconds: float = 1.0) -> float | None:
    """The share of all CPUs idle over a short while (Linux), or None where unknown."""

    def sample() -> tuple[int, int]:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_idle(share: float) -> float | None:
    """Until `share` of the machine was idle over a second (a minute at most); the last share."""
    deadline = time.monotonic() + 60
    found = idle_share()
    while found is not None and found < share and time.monotonic() < deadline:
        found = idle_share()
    return found


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_to_ready(env: dict[str, str], idle: float) -> Start:
    """Spawn run.py, wait until every /readyz answers 200, stop it."""
    urls = {s: f"http://127.0.0.1:{env[f'SUBSIDY_{s.upper()}_PORT']}/readyz" for s in SERVICES}
    found = wait_idle(idle) if idle else None
    cpu = cpu_of_children()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "scripts/run.py"], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        pending = set(SERVICES)
        while pending:
            if time.monotonic() - started > TIMEOUT or process.poll() is not None:
                raise RuntimeError(f"not ready: {', '.join(sorted(pending))}")
            pending = {s for s in pending if not ready(urls[s])}
            if pending:
                time.sleep(POLL)
        seconds = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return Start(seconds, cpu_of_children() - cpu, found)


@contextmanager
def postgresql() -> Iterator[dict[str, str]]:
    """Settings for three fresh PostgreSQL databases, dropped afterwards."""
    urls = {s: asyncio.run(create_database(f"startup_{s[0]}")) for s in SERVICES}
    data_dir = tempfile.mkdtemp(prefix="startup-")
    try:
        yield {f"{s.upper()}_DATABASE_URL": u for s, u in urls.items()} | {
            "SUBSIDY_DATA_DIR": data_dir
        }
    finally:
        for url in urls.values():
            asyncio.run(drop_database(url))
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def sqlite() -> Iterator[dict[str, str]]:
    """Settings for the SQLite default, in a fresh data directory."""
    data_dir = tempfile.mkdtemp(prefix="startup-")
    try:
        yield {f"{s.upper()}_DATABASE_URL": "" for s in SERVICES} | {"SUBSIDY_DATA_DIR": data_dir}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def measure(backend: str, runs: int, idle: float) -> dict[str, list[Start]]:
    """Cold and warm starts, `runs` of each."""
    figures: dict[str, list[Start]] = {"cold": [], "warm": []}
    for _ in range(runs):
        with postgresql() if backend == "postgresql" else sqlite() as databases:
            env = {
                "SUBSIDY_ADMIN_KEY": KEY,
                "REGISTRY_LOG_LEVEL": "WARNING", "CALCULATOR_LOG_LEVEL": "WARNING",
                "GATEWAY_LOG_LEVEL": "WARNING",
                **{
                    f"SUBSIDY_{s.upper()}_PORT": str(port)
                    for s, port in zip(SERVICES, free_ports(len(SERVICES)), strict=True)
                },
                **databases,
            }  # fmt: skip
            figures["cold"].append(start_to_ready(env, idle))
            figures["warm"].append(start_to_ready(env, idle))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--idle", type=float, default=0.0, help="e.g. 0.9: wait for a quiet CPU")
    args = parser.parse_args()
    backends = ("postgresql", "sqlite") if args.backend == "both" else (args.backend,)
    print(f"Python {platform.python_version()} on {os.cpu_count()} cores; median of {args.runs}")
    print(f"{'database':12} {'start':6} {'ready s':>8} {'CPU s':>6}  runs (ready s / CPU s, idle)")
    for backend in backends:
        for kind, starts in measure(backend, args.runs, args.idle).items():
            runs = "  ".join(
                f"{s.seconds:.2f}/{s.cpu:.1f}" + (f" {s.idle:.0%}" if s.idle is not None else "")
                for s in starts
            )
            seconds = statistics.median(s.seconds for s in starts)
            cpu = statistics.median(s.cpu for s in starts)
            print(f"{backend:12} {kind:6} {seconds:8.2f} {cpu:6.1f}  {runs}", flush=True)


if __name__ == "__main__":
    main()
