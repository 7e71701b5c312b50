"""Run the whole system locally: registry, calculator and gateway as three processes.

`make run` calls this. Environment: SUBSIDY_DATA_DIR (default ./var), SUBSIDY_ADMIN_KEY (the
first admin key; generated and kept in the data dir when unset), SUBSIDY_HOST (127.0.0.1),
SUBSIDY_GATEWAY_PORT (8000), SUBSIDY_REGISTRY_PORT (8001), SUBSIDY_CALCULATOR_PORT (8002), and
SUBSIDY_<SERVICE>_WORKERS (1): worker processes of one service. The registry's and the
gateway's share its port; the calculator's each listen on a port of their own, from its port
up (8002, 8003, …), and the gateway sends each request to the one with the fewest in flight,
so that two long batches never queue on one worker while another idles.
Ctrl-C, SIGTERM or SIGHUP stops all three, while they start too.

Each service is `uvicorn --factory <service>.main:create_app`, forked from this process once it
has imported what they all use (FastAPI, SQLAlchemy, pydantic, uvicorn): most of a service's
import time, paid once instead of three times over on the same cores. The registry goes first,
as the calculator waits for its snapshot. Where fork is not available, each service is a
`python -m uvicorn` process of its own.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

READY_TIMEOUT = 60.0
STOP_SIGNALS = frozenset((signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
STOP_TIMEOUT = 10.0

# Imported here before the first fork: what the three services share.
SHARED_MODULES = (
    "subsidy_common.app",  # FastAPI, Starlette, pydantic, prometheus_client
    "subsidy_common.database",  # SQLAlchemy's asyncio engine
    "subsidy_common.logs",
    "subsidy_common.types",
    "pydantic_settings",
    "pydantic.v1",  # FastAPI looks route annotations up in it
    "sqlmodel",
    "uvicorn.main",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "subsidy_common.serving",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
)
DATABASE_DRIVERS = {  # the SQLAlchemy dialect a service will load, by database URL scheme
    "sqlite": "sqlalchemy.dialects.sqlite.aiosqlite",
    "postgres": "sqlalchemy.dialects.postgresql.asyncpg",
}
# Alembic and its environment: only when a database is behind its migrations (a first start).
MIGRATION_MODULES = ("alembic.command", "subsidy_common.migrations")
# The CEL library for policy conditions, which the registry and the calculator evaluate.
CONDITION_MODULES = ("cel",)
# The HTTP client to other services (httpx on aiohttp), which the registry does without.
CLIENT_MODULES = ("subsidy_common.downstream",)


@dataclass(frozen=True)
class Service:
    """One of the three processes, in the order they start.

    `preload`: modules imported just before this service is forked, for it and the ones after.
    `own_ports`: its workers listen on a port each, from the service's port up, rather than
    sharing one (where a kernel's choice of worker would last as long as the connection).
    """

    name: str
    factory: str
    default_port: int
    preload: tuple[str, ...] = ()
    own_ports: bool = False

    @property
    def port_variable(self) -> str:
        return f"SUBSIDY_{self.name.upper()}_PORT"

    @property
    def workers(self) -> int:
        """Worker processes of the service (uvicorn's own supervisor above two on one port)."""
        value = os.environ.get(f"SUBSIDY_{self.name.upper()}_WORKERS", "1")
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 64:
            raise SystemExit(f"SUBSIDY_{self.name.upper()}_WORKERS must be 1 to 64, not {value!r}")
        url = os.environ.get(f"{self.name.upper()}_DATABASE_URL") or "sqlite"
        if int(value) > 1 and url.startswith("sqlite"):
            # On SQLite the ledger's locks live in one process: two would each hold their own.
            raise SystemExit(
                f"SUBSIDY_{self.name.upper()}_WORKERS above 1 needs PostgreSQL"
                f" ({self.name.upper()}_DATABASE_URL)."
            )
        if int(value) > 1 and self.name == "gateway" and not os.environ.get("GATEWAY_REDIS_URL"):
            # Each worker would count the tenants' requests on its own: N times the limit.
            raise SystemExit("SUBSIDY_GATEWAY_WORKERS above 1 needs Redis (GATEWAY_REDIS_URL).")
        return int(value)


SERVICES = (
    Service("registry", "registry.main:create_app", 8001, preload=CONDITION_MODULES),
    Service(
        "calculator", "calculator.main:create_app", 8002, preload=CLIENT_MODULES, own_ports=True
    ),
    Service("gateway", "gateway.main:create_app", 8000),
)
BY_NAME = {service.name: service for service in SERVICES}


def admin_key(data_dir: Path) -> str:
    """The bootstrap admin key: from the environment, from the data dir, or newly made; kept in
    the data dir either way, so that the file always holds the key the gateway starts with (a
    key it replaces is revoked)."""
    from gateway.auth.keys import weakness  # refused here, before any service starts

    path = data_dir / "admin_key"
    configured = os.environ.get("SUBSIDY_ADMIN_KEY")
    if configured:
        reason = weakness(configured)
        if reason is not None:
            raise SystemExit(
                f"SUBSIDY_ADMIN_KEY is refused: {reason}. Make one with: python3 -c"
                " 'import secrets; print(\"sk_\" + secrets.token_urlsafe(32))'"
            )
        if not path.exists() or path.read_text().strip() != configured:
            _keep(path, configured)
        print(f"Admin key: SUBSIDY_ADMIN_KEY, kept in {path}", flush=True)
        return configured
    if path.exists():
        kept = path.read_text().strip()
        reason = weakness(kept)
        if reason is not None:
            raise SystemExit(
                f"{path} does not hold a usable admin key: {reason}. Delete the file to have a"
                " new key made, or set SUBSIDY_ADMIN_KEY."
            )
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
            print(f"Admin key: {path} was readable by others; now by its owner only", flush=True)
        print(f"Admin key: kept in {path}", flush=True)
        return kept
    key = "sk_" + secrets.token_urlsafe(32)
    _keep(path, key)
    print(f"Admin key (shown once, kept in {path} with mode 0600):\n  {key}", flush=True)
    return key


def _keep(path: Path, key: str) -> None:
    """Write the key where only its owner reads it."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")


def instance_ports(service: Service, port: int) -> list[int]:
    """The ports the service's processes listen on."""
    return [port + i for i in range(service.workers)] if service.own_ports else [port]


def environment(data_dir: Path, host: str, ports: dict[str, int], key: str) -> dict[str, str]:
    """The variables every service process gets."""
    env = dict(os.environ)
    env["SUBSIDY_DATA_DIR"] = str(data_dir)
    env["SUBSIDY_ADMIN_KEY"] = key
    registry = f"http://{host}:{ports['registry']}"
    env.setdefault("CALCULATOR_REGISTRY_URL", registry)
    env.setdefault("GATEWAY_REGISTRY_URL", registry)
    calculator = instance_ports(BY_NAME["calculator"], ports["calculator"])
    env.setdefault("GATEWAY_CALCULATOR_URL", ",".join(f"http://{host}:{p}" for p in calculator))
    return env


class Process(Protocol):
    """What run.py needs of a service process (subprocess.Popen has it)."""

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class Forked:
    """A service process forked from this one, watched as a subprocess.Popen is."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.02)
        return code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # gone meanwhile
                os.kill(self.pid, signum)


def preload(modules: Sequence[str]) -> None:
    """Import modules here, so that the services forked afterwards find them imported.

    The collector is paused meanwhile (imports make many objects, and all of them live on),
    and what was imported is then kept out of its sight: collecting it in a forked service
    would write to every shared page, and make the service copy them all.
    """
    gc.disable()
    try:
        for module in modules:
            with contextlib.suppress(ImportError):  # the service will say what is missing
                importlib.import_module(module)
    finally:
        gc.freeze()
        gc.enable()


def shared_modules() -> list[str]:
    """What every service imports, with the database drivers the configuration names."""
    urls = [os.environ.get(f"{s.name.upper()}_DATABASE_URL") or "sqlite" for s in SERVICES]
    drivers = [
        m for scheme, m in DATABASE_DRIVERS.items() if any(u.startswith(scheme) for u in urls)
    ]
    return [*SHARED_MODULES, *drivers]


def migrations_due() -> bool:
    """Whether a service will migrate its database as it starts (a first start, an upgrade).

    The services check again, and migrate by themselves; this only tells whether Alembic is
    worth importing here, once, rather than in each of them. Imported by `preload` already.
    """
    import asyncio
    import threading

    from pydantic_settings import SettingsConfigDict
    from subsidy_common.database import at_head
    from subsidy_common.settings import ServiceSettings

    databases = []
    for service in SERVICES:

        class Settings(ServiceSettings):  # the part of the service's settings read here
            model_config = SettingsConfigDict(env_prefix=f"{service.name.upper()}_", extra="ignore")

        settings = Settings()
        if settings.migrate_on_start:
            url = settings.resolved_database_url(service.name)
            databases.append(at_head(settings.migrations_dir(service.name), url))

    async def check() -> list[bool | BaseException]:
        return await asyncio.gather(*databases, return_exceptions=True)

    try:
        return not all(result is True for result in asyncio.run(check()))
    finally:
        for thread in threading.enumerate():  # nothing but this thread may run at a fork
            if thread is not threading.main_thread():
                thread.join(timeout=5)


def serve(service: Service, host: str, port: int, workers: int) -> None:
    """In a forked process: serve one service as `uvicorn --factory` does, then exit."""
    code = 1
    try:
        from subsidy_common.serving import serve as serve_factory  # imported by preload()

        serve_factory(service.factory, host=host, port=port, workers=workers)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def start(
    service: Service, host: str, port: int, env: dict[str, str], *, fork: bool
) -> list[Process]:
    """Start one service, forked from this process or as processes of their own."""
    if service.own_ports:
        return [
            launch(service, host, p, env, fork=fork, workers=1)
            for p in instance_ports(service, port)
        ]
    return [launch(service, host, port, env, fork=fork, workers=service.workers)]


def launch(
    service: Service, host: str, port: int, env: dict[str, str], *, fork: bool, workers: int
) -> Process:
    """Start one process of a service (a uvicorn supervisor above one worker)."""
    if fork:
        sys.stdout.flush()
        sys.stderr.flush()
        # Until the child has set its own handlers it has the launcher's, which only note a
        # signal: one sent meanwhile (a Ctrl-C as it starts) would be lost, and the service
        # would run on until killed. Held back instead, it reaches the child's own handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                for signum in STOP_SIGNALS:
                    signal.signal(signum, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                serve(service, host, port, workers)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return Forked(pid)
    command = [
        sys.executable, "-m", "subsidy_common.serving", service.factory,
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)


def wait_ready(
    url: str, processes: Sequence[Started], timeout: float, stopping: Callable[[], bool]
) -> str | None:
    """Poll a readiness URL until it answers 200 (None), or say why it will not: a process
    stopped, a signal to stop came, or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stopping():
            return "a signal to stop came"
        if (gone := exited(processes)) is not None:
            return gone
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310  # loopback URL we built
                if response.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return f"{url} did not answer 200 within {timeout:.0f} s"


def exited(processes: Sequence[Started]) -> str | None:
    """Which service's process has stopped, and how; None while all run."""
    for started in processes:
        code = started.process.poll()
        if code is not None:
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            return f"the {started.service} stopped ({how})"
    return None


def ports_in_use(host: str, ports: dict[str, list[int]]) -> list[str]:
    """The ports another process listens on already (another `make run`, say), named by the
    service that wants each. Bound as uvicorn binds, so a port in TIME_WAIT is free."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise SystemExit(f"SUBSIDY_HOST {host!r} cannot be resolved: {exc.strerror}") from exc
    taken = []
    for service, numbers in ports.items():
        for port in numbers:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:  # as asyncio's servers bind, IPv6 alone
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    probe.bind((address[0], port, *address[2:]))
                except OSError:
                    taken.append(f"{port} ({service})")
    return taken


@dataclass(frozen=True)
class Started:
    """A running process and the service it serves."""

    service: str
    process: Process


def stop(started: Sequence[Started]) -> None:
    """Ask every process to stop, then make sure it has."""
    processes = [s.process for s in started]
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


def port_setting(service: Service) -> int:
    """The service's port, from its variable or its default; a bad one refused."""
    value = os.environ.get(service.port_variable, str(service.default_port))
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        raise SystemExit(f"{service.port_variable} must be a port, 1 to 65535, not {value!r}")
    return int(value)


def writable(data_dir: Path) -> Path:
    """The data directory, made if need be; refused where this user cannot write in it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"SUBSIDY_DATA_DIR {data_dir} cannot be made: {exc.strerror}") from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise SystemExit(f"SUBSIDY_DATA_DIR {data_dir} is not writable by this user")
    return data_dir


def main() -> int:
    """Start the three services, report the gateway URL, and supervise until told to stop."""
    stopping = False

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    data_dir = writable(Path(os.environ.get("SUBSIDY_DATA_DIR", "var")).resolve())
    host = os.environ.get("SUBSIDY_HOST", "127.0.0.1")
    ports = {s.name: port_setting(s) for s in SERVICES}
    for service in SERVICES:
        _ = service.workers  # refuse a bad setting before anything starts
    wanted = {s.name: instance_ports(s, ports[s.name]) for s in SERVICES}
    taken = [p for numbers in wanted.values() for p in numbers]
    if len(set(taken)) < len(taken) or max(taken) > 65535:
        raise SystemExit(
            f"The services' ports overlap or pass 65535: {sorted(taken)} (the calculator's"
            " workers take its port and the ones above it)."
        )
    key = admin_key(data_dir)
    in_use = ports_in_use(host, wanted)
    if in_use:
        raise SystemExit(
            f"Port {', '.join(in_use)} on {host} is in use: is the system running already"
            " (another `make run`)? Stop it, or set SUBSIDY_<SERVICE>_PORT."
        )
    env = environment(data_dir, host, ports, key)
    started: list[Started] = []
    try:
        fork = hasattr(os, "fork")
        if fork:
            os.environ.update(env)  # what the forked services inherit
            preload(shared_modules())
            if migrations_due():
                preload(MIGRATION_MODULES)
        for service in SERVICES:
            if stopping:
                break
            if fork:
                preload(service.preload)
            started += [
                Started(service.name, process)
                for process in start(service, host, ports[service.name], env, fork=fork)
            ]
        gateway = f"http://{host}:{ports['gateway']}"
        for service in SERVICES:  # each one; the gateway's readiness does not count the others
            for port in wanted[service.name]:
                url = f"http://{host}:{port}/readyz"
                failed = wait_ready(url, started, READY_TIMEOUT, lambda: stopping)
                if failed is not None and stopping:
                    print("Stopping…", flush=True)
                    return 0
                if failed is not None:
                    print(
                        f"The system did not start: {failed}; see the log above.", file=sys.stderr
                    )
                    return 1
        print(f"\nReady. Gateway: {gateway}  (API document: {gateway}/openapi.json)", flush=True)
        while not stopping:
            if (gone := exited(started)) is not None:
                print(f"{gone[0].upper()}{gone[1:]}; stopping the others.", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print("Stopping…", flush=True)
        return 0
    finally:
        stop(started)


if __name__ == "__main__":
    sys.exit(main())
