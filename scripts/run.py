"""Run the whole system locally: registry, calculator and gateway as three processes.

`make run` calls this. Environment: SUBSIDY_DATA_DIR (default ./var), SUBSIDY_ADMIN_KEY (the
first admin key; generated and kept in the data dir when unset), SUBSIDY_HOST (127.0.0.1),
SUBSIDY_GATEWAY_PORT (8000), SUBSIDY_REGISTRY_PORT (8001), SUBSIDY_CALCULATOR_PORT (8002).
Ctrl-C or SIGTERM stops all three.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Service:
    """One of the three processes."""

    name: str
    factory: str
    default_port: int

    @property
    def port_variable(self) -> str:
        return f"SUBSIDY_{self.name.upper()}_PORT"


SERVICES = (
    Service("registry", "registry.main:create_app", 8001),
    Service("calculator", "calculator.main:create_app", 8002),
    Service("gateway", "gateway.main:create_app", 8000),
)


def admin_key(data_dir: Path) -> str:
    """The first admin key: from the environment, from the data dir, or newly made and kept."""
    configured = os.environ.get("SUBSIDY_ADMIN_KEY")
    if configured:
        return configured
    path = data_dir / "admin_key"
    if path.exists():
        print(f"Admin key: kept in {path}", flush=True)
        return path.read_text().strip()
    key = "sk_" + secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    print(f"Admin key (shown once, kept in {path} with mode 0600):\n  {key}", flush=True)
    return key


def environment(data_dir: Path, host: str, ports: dict[str, int], key: str) -> dict[str, str]:
    """The variables every service process gets."""
    env = dict(os.environ)
    env["SUBSIDY_DATA_DIR"] = str(data_dir)
    env["SUBSIDY_ADMIN_KEY"] = key
    registry = f"http://{host}:{ports['registry']}"
    env.setdefault("CALCULATOR_REGISTRY_URL", registry)
    env.setdefault("GATEWAY_REGISTRY_URL", registry)
    env.setdefault("GATEWAY_CALCULATOR_URL", f"http://{host}:{ports['calculator']}")
    return env


def wait_ready(url: str, processes: list[subprocess.Popen[bytes]], timeout: float) -> bool:
    """Poll a readiness URL until it answers 200, a process dies or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310  # loopback URL we built
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask every process to stop, then make sure it has."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    """Start the three services, report the gateway URL, and supervise until told to stop."""
    data_dir = Path(os.environ.get("SUBSIDY_DATA_DIR", "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    host = os.environ.get("SUBSIDY_HOST", "127.0.0.1")
    ports = {s.name: int(os.environ.get(s.port_variable, s.default_port)) for s in SERVICES}
    env = environment(data_dir, host, ports, admin_key(data_dir))
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for service in SERVICES:
            command = [
                sys.executable, "-m", "uvicorn", "--factory", service.factory,
                "--host", host, "--port", str(ports[service.name]),
                "--no-access-log", "--timeout-graceful-shutdown", "5",
            ]  # fmt: skip
            processes.append(subprocess.Popen(command, env=env))
        gateway = f"http://{host}:{ports['gateway']}"
        for service in SERVICES:  # each one; the gateway's readiness does not count the others
            url = f"http://{host}:{ports[service.name]}/readyz"
            if not wait_ready(url, processes, READY_TIMEOUT):
                print(
                    f"The {service.name} did not become ready; see the log above.", file=sys.stderr
                )
                return 1
        print(f"\nReady. Gateway: {gateway}  (API document: {gateway}/openapi.json)", flush=True)
        while not stopping:
            if any(p.poll() is not None for p in processes):
                print("A service stopped unexpectedly; stopping the others.", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print("Stopping…", flush=True)
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
