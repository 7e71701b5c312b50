"""The peer: OpenFisca's Web API `/calculate` on this machine, measured in one run.

    .venv/bin/python bench/openfisca.py [--seconds 10] [--connections 1,4,64]
        [--persons 100,1000] [--batch-connections 1,2] [--workers 2]

Installs openfisca-core 46.0.1 with openfisca-country-template 8.2.0 from PyPI into a
virtualenv of its own (bench/.openfisca-venv, pinned by bench/peer/requirements.txt; made once,
made again when that file changes), starts `openfisca serve` (gunicorn, 2 sync workers) on a
free loopback port, checks one answer against the template's law, and loads it with wrk, a
second process on loopback, bounded in time (each run --seconds) and in count (wrk's
connections). The server is stopped at the end, on error, Ctrl-C or SIGTERM too. As
`openfisca serve` runs it, gunicorn's sync workers close the connection after every answer, so
wrk connects anew for each request (our services keep connections alive).

The request is the peer's counterpart of our single calculation (one applicant, one event): one
person with a month's salary, asking for that month's `income_tax` and
`social_security_contribution` (2017-01; the template's law: tax 15 %, contribution 2 % up to
6,000, 6 % up to 12,400, 12 % above). Then 100 and 1,000 such persons in one request.

Figures:
- req/s, p50 and p99 from wrk (`-t2`, `-c1` with `-t1`) at each --connections;
- server CPU per request: user + system time of the gunicorn master and workers (from /proc)
  over the run, divided by the requests wrk completed; it does not depend on how busy the
  workers were, and is the "CPU cost" figure;
- wall time per request = connections / req/s. With no more connections than workers, each
  worker has one request at a time, so this is the time one worker spends on one request
  (at 1 connection: one worker, one core; at 2: both workers busy, the two cores shared with
  wrk). Per person = that divided by the persons in the request;
- cores busy with other work: the machine's CPU time (/proc/stat) during the run, less the
  server's, wrk's and this script's, per second: what other people's work took meanwhile.

`measure()` returns the figures as a `PeerFigures` for a script that runs both sides at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT  # also puts tests/ on the path, for testkit
from testkit import free_port

VENV = ROOT / "bench" / ".openfisca-venv"
REQUIREMENTS = ROOT / "bench" / "peer" / "requirements.txt"
PACKAGES = ("OpenFisca-Core", "openfisca-country-template", "gunicorn", "numpy", "Flask")
COUNTRY_PACKAGE = "openfisca_country_template"
PERIOD = "2017-01"
VARIABLES = ("income_tax", "social_security_contribution")
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True)
class Run:
    """One wrk run against /calculate."""

    persons: int
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx responses and socket errors (connect, read, write, timeout)
    server_cpu_s: float  # gunicorn master and workers
    wrk_cpu_s: float
    other_cpu_s: float  # everything else on the machine meanwhile (other people's work)

    @property
    def cpu_ms_per_request(self) -> float:
        return 1e3 * self.server_cpu_s / self.requests if self.requests else math.nan

    @property
    def wall_s_per_request(self) -> float:
        return self.connections / self.rps if self.rps else math.nan

    @property
    def other_cores(self) -> float:
        """How many of the machine's cores others kept busy, on average, during the run."""
        return self.other_cpu_s / self.seconds

    @property
    def cpu_us_per_person(self) -> float:
        return 1e3 * self.cpu_ms_per_request / self.persons

    @property
    def wall_us_per_person(self) -> float:
        return 1e6 * self.wall_s_per_request / self.persons


@dataclass(frozen=True)
class PeerFigures:
    """Everything one run of the peer measured."""

    versions: dict[str, str]
    workers: int
    ready_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    runs: tuple[Run, ...]

    def run(self, persons: int, connections: int) -> Run:
        """The run with that many persons per request at that many connections."""
        for r in self.runs:
            if (r.persons, r.connections) == (persons, connections):
                return r
        raise KeyError((persons, connections))

    def markdown(self) -> str:
        """The figures as the tables of bench/RESULTS.md."""
        v = self.versions
        lines = [
            f"OpenFisca-Core {v['OpenFisca-Core']}, openfisca-country-template "
            f"{v['openfisca-country-template']}, gunicorn {v['gunicorn']} ({self.workers} sync "
            f"workers), numpy {v['numpy']}, Flask {v['Flask']}, Python {v['Python']}; ready "
            f"after start: {self.ready_s:.1f} s; load average before "
            f"{'/'.join(f'{x:.2f}' for x in self.load_before)}, after "
            f"{'/'.join(f'{x:.2f}' for x in self.load_after)}.",
            "",
            "| request | connections | req/s | p50 ms | p99 ms | server CPU per request | errors "
            "| cores busy with other work |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.persons:,} person{'s' if r.persons > 1 else ''} | {r.connections} | "
            f"{r.rps:,.1f} | {r.p50_ms:,.1f} | {r.p99_ms:,.1f} | {r.cpu_ms_per_request:,.2f} ms | "
            f"{r.errors} | {r.other_cores:.2f} |"
            for r in self.runs
        ]
        batches = [r for r in self.runs if r.persons > 1]
        if batches:
            lines += [
                "",
                "| persons in one request | connections | s per request (wall) | µs per person "
                "(wall) | µs per person (server CPU) |",
                "|---:|---:|---:|---:|---:|",
            ]
            lines += [
                f"| {r.persons:,} | {r.connections} | {r.wall_s_per_request:.3f} | "
                f"{r.wall_us_per_person:,.0f} | {r.cpu_us_per_person:,.0f} |"
                for r in batches
            ]
        return "\n".join(lines)


def salary(i: int) -> float:
    """Person i's salary: 3,000 for the first, then across all three brackets."""
    return 3000.0 + 17.0 * i


def expected(pay: float) -> dict[str, float]:
    """The template's law for 2017-01."""
    contribution = (
        0.02 * min(pay, 6000.0)
        + 0.06 * max(0.0, min(pay, 12400.0) - 6000.0)
        + 0.12 * max(0.0, pay - 12400.0)
    )
    return {"income_tax": 0.15 * pay, "social_security_contribution": contribution}


def situation(persons: int) -> dict[str, object]:
    """A /calculate body: persons with a month's salary, asking for the two variables."""
    return {
        "persons": {
            f"p{i}": {"salary": {PERIOD: salary(i)}} | {name: {PERIOD: None} for name in VARIABLES}
            for i in range(persons)
        }
    }


def environment(venv: Path = VENV) -> dict[str, str]:
    """Make the peer's virtualenv if missing or out of date; return the installed versions."""
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not python.exists() or not stamp.exists() or stamp.read_text() != digest:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        print(f"installing the peer into {venv} ...", file=sys.stderr)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(REQUIREMENTS)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"pip install -r {REQUIREMENTS} failed:\n{done.stderr[-4000:]}")
        stamp.write_text(digest)
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, json, platform, sys; print(json.dumps("
         "{'Python': platform.python_version()} | {p: m.version(p) for p in sys.argv[1:]}))",
         *PACKAGES],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    versions: dict[str, str] = json.loads(out)
    return versions


def cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and its children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry.name), int(fields[1])
        if root in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def busy_seconds() -> float:
    """CPU time the whole machine has spent not idle since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def post(url: str, body: dict[str, object], timeout: float = 60) -> tuple[int, bytes]:
    """One POST with a JSON body; the status and the body of the answer."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def check(url: str, persons: int) -> None:
    """One request; every person's answer must be the template's law."""
    status, raw = post(url, situation(persons))
    if status != 200:
        raise RuntimeError(f"/calculate answered {status}: {raw[:500]!r}")
    answer = json.loads(raw)["persons"]
    if len(answer) != persons:
        raise RuntimeError(f"/calculate answered for {len(answer)} persons, not {persons}")
    for i in range(persons):
        for name, want in expected(salary(i)).items():
            got = answer[f"p{i}"][name][PERIOD]
            if not math.isclose(got, want, rel_tol=1e-5, abs_tol=0.01):
                raise RuntimeError(f"p{i} {name}: {got}, expected {want}")


@contextmanager
def serve(workers: int, venv: Path = VENV) -> Iterator[tuple[str, int, float]]:
    """`openfisca serve` on a free loopback port; yields its URL, master pid, seconds to ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:  # a SIGTERM (kill, timeout) unwinds through the finally below
        previous = signal.signal(signal.SIGTERM, _terminated)
    with tempfile.TemporaryFile("w+") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [str(venv / "bin" / "openfisca"), "serve", "--country-package", COUNTRY_PACKAGE,
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = started + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"openfisca serve did not start:\n{log.read()[-4000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/entities", timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.1)
            yield url, process.pid, time.monotonic() - started
        finally:
            process.terminate()  # gunicorn's master stops its workers on SIGTERM
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if main_thread:
                signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def wrk(url: str, persons: int, seconds: int, connections: int, master: int,
        script_dir: Path) -> Run:  # fmt: skip
    """Load /calculate with persons per request; wrk's figures and the server's CPU meanwhile."""
    script = script_dir / f"calculate-{persons}.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(situation(persons))))
    cpu, busy = cpu_seconds(master), busy_seconds()
    me, children = own_seconds(resource.RUSAGE_SELF), own_seconds(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s",
         f"--timeout={max(10, seconds)}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cpu, busy = cpu_seconds(master) - cpu, busy_seconds() - busy
    me = own_seconds(resource.RUSAGE_SELF) - me
    load = own_seconds(resource.RUSAGE_CHILDREN) - children  # wrk, the only child since

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out)
        if match is None:
            raise RuntimeError(f"no {pattern!r} in wrk's output:\n{out}")
        return match

    def percentile(p: str) -> float:
        value, unit = find(rf"\s{p}%\s+([\d.]+)(us|ms|s|m|h)\b").groups()
        return float(value) * UNITS[unit]

    done = find(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Run(
        persons=persons, connections=connections,
        seconds=float(done.group(2)) * UNITS[done.group(3)] / 1e3,
        requests=int(done.group(1)), rps=float(find(r"Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=percentile("50"), p99_ms=percentile("99"),
        errors=(int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
        server_cpu_s=cpu, wrk_cpu_s=load, other_cpu_s=max(0.0, busy - cpu - load - me),
    )  # fmt: skip


def measure(
    seconds: int = 10,
    connections: Sequence[int] = (1, 4, 64),
    persons: Sequence[int] = (100, 1000),
    batch_connections: Sequence[int] = (1, 2),
    workers: int = 2,
) -> PeerFigures:
    """Install if needed, serve, check, load; the peer's figures.

    One person per request at each of `connections`; then each of `persons` in one request at
    each of `batch_connections`. Each run lasts `seconds`, after a 2-second warm-up.
    """
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (`make bench` does)")
    versions = environment()
    load_before = os.getloadavg()
    runs: list[Run] = []
    with serve(workers) as (url, master, ready), tempfile.TemporaryDirectory() as scripts:
        calculate = f"{url}/calculate"
        check(calculate, 1)
        for n in persons:
            check(calculate, n)
        wrk(calculate, 1, 2, 4, master, Path(scripts))  # warm-up, both workers
        for c in connections:
            runs.append(wrk(calculate, 1, seconds, c, master, Path(scripts)))
        for n in persons:
            for c in batch_connections:
                runs.append(wrk(calculate, n, seconds, c, master, Path(scripts)))
    return PeerFigures(
        versions=versions, workers=workers, ready_s=ready,
        load_before=load_before, load_after=os.getloadavg(), runs=tuple(runs),
    )  # fmt: skip


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    """Measure the peer and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run (default 10)")
    parser.add_argument("--connections", type=numbers, default=[1, 4, 64],
                        help="one-person runs (default 1,4,64)")  # fmt: skip
    parser.add_argument("--persons", type=numbers, default=[100, 1000],
                        help="persons per request in the batch runs (default 100,1000)")  # fmt: skip
    parser.add_argument("--batch-connections", type=numbers, default=[1, 2],
                        help="connections for the batch runs (default 1,2)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    args = parser.parse_args()
    figures = measure(args.seconds, args.connections, args.persons, args.batch_connections,
                      args.workers)  # fmt: skip
    print(f"OpenFisca Web API POST /calculate, {args.seconds} s per run, wrk -t2 (-t1 at 1 "
          f"connection), loopback\n")  # fmt: skip
    print(figures.markdown())


if __name__ == "__main__":
    main()
