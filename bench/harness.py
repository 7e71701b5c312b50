"""What the benchmarks share: processes on loopback, readiness, and load from wrk."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from stdnum.cn import uscc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from testkit import create_database, drop_database, free_port, free_ports_in_a_row  # noqa: E402

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


def instructions_per_unit(command: Callable[[int], list[str]]) -> float:
    """Instructions per unit of work, from two callgrind runs of `command(units)`: 100 and 1,100
    units after the same start. The difference is the same from run to run, whatever else the
    machine is doing, once string hashing is fixed (with a random seed, dict and set probes
    move the count by up to 7 %)."""
    counts = []
    for units in (100, 1100):
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command(units)],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        ).stderr  # fmt: skip
        found = re.search(r"Collected : (\d+)", out)
        if found is None:
            raise SystemExit(out)
        counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) / 1000


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
    done = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": percentile("50"), "p99": percentile("99"), "requests": done,
            "non_2xx": float(errors.group(1)) if errors else 0.0}  # fmt: skip


@functools.cache
def enterprise_id(number: int) -> str:
    """The valid 统一社会信用代码 of the benchmarks' `number`-th enterprise."""
    body = f"91510500MA{number:07d}"
    return body + uscc.calc_check_digit(body)


class CpuMeter:
    """CPU time spent by each service (by the port it listens on) and by PostgreSQL's processes
    between `start()` and `stop()`; processes started in between count from their start."""

    def __init__(self, ports: Mapping[str, int | Sequence[int]]) -> None:
        self._ports = {
            name: [port] if isinstance(port, int) else list(port) for name, port in ports.items()
        }
        self._before: dict[int, int] = {}
        # After `stop()`: the CPU seconds of each process of each service, largest first.
        self.processes: dict[str, list[float]] = {}

    @staticmethod
    def _ticks() -> dict[int, tuple[str, int]]:
        found = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        name, _, rest = stat.read().partition(" (")[2].rpartition(") ")
                except OSError:
                    continue
                fields = rest.split()
                found[int(entry)] = (name, int(fields[11]) + int(fields[12]))
        return found

    def _owners(self) -> dict[int, str]:
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        owners = {}
        for line in out.splitlines():
            for service, ports in self._ports.items():
                if any(f":{port} " in line for port in ports):
                    owners.update({int(pid): service for pid in re.findall(r"pid=(\d+)", line)})
        return owners

    def start(self) -> None:
        self._before = {pid: ticks for pid, (_, ticks) in self._ticks().items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds per service, and under "postgresql"."""
        owners, spent = self._owners(), dict.fromkeys([*self._ports, "postgresql"], 0.0)
        per_second = os.sysconf("SC_CLK_TCK")
        self.processes = {name: [] for name in spent}
        for pid, (name, ticks) in self._ticks().items():
            who = owners.get(pid) or ("postgresql" if name == "postgres" else None)
            if who is not None:
                seconds = (ticks - self._before.get(pid, 0)) / per_second
                spent[who] += seconds
                self.processes[who].append(seconds)
        for seconds in self.processes.values():
            seconds.sort(reverse=True)
        return spent


@contextmanager
def system(
    checkout: Path = Path("."), **settings: str
) -> Iterator[tuple[str, str, float, CpuMeter]]:
    """The three services as `make run` starts them (that of `checkout`, this tree by default),
    on throwaway PostgreSQL databases.

    Yields the gateway URL, the admin key, the seconds from start to ready and a CPU meter.
    """
    urls = {name: asyncio.run(create_database(f"bench_{name}")) for name in ("r", "c", "g")}
    key = "sk_bench-admin-key-0123456789abcdef0123456789"
    ports = {  # a port given in the settings is used, and waited for
        name: int(settings.get(f"SUBSIDY_{name.upper()}_PORT") or free_port())
        for name in ("gateway", "registry")
    }
    # The calculator's workers listen on ports of their own, from its port up (scripts/run.py).
    calculator = free_ports_in_a_row(int(settings.get("SUBSIDY_CALCULATOR_WORKERS", "1")))
    ports["calculator"] = calculator[0]
    env = {
        "SUBSIDY_ADMIN_KEY": key, "SUBSIDY_DATA_DIR": tempfile.mkdtemp(),
        "REGISTRY_DATABASE_URL": urls["r"], "CALCULATOR_DATABASE_URL": urls["c"],
        "GATEWAY_DATABASE_URL": urls["g"], "GATEWAY_RATE_LIMIT": "100000000/minute",
        "SUBSIDY_GATEWAY_PORT": str(ports["gateway"]), "SUBSIDY_REGISTRY_PORT": str(ports["registry"]),
        "SUBSIDY_CALCULATOR_PORT": str(ports["calculator"]),
        "REGISTRY_LOG_LEVEL": "WARNING", "CALCULATOR_LOG_LEVEL": "WARNING", "GATEWAY_LOG_LEVEL": "WARNING",
        **settings,
    }  # fmt: skip
    started = time.monotonic()
    try:
        with processes(([sys.executable, str(checkout / "scripts" / "run.py")], env)):
            gateway = f"http://127.0.0.1:{ports['gateway']}"
            for port in [ports["gateway"], ports["registry"], *calculator]:
                wait(f"http://127.0.0.1:{port}/readyz")
            yield (
                gateway,
                key,
                time.monotonic() - started,
                CpuMeter({**ports, "calculator": calculator}),
            )
    finally:
        for url in urls.values():
            asyncio.run(drop_database(url))
