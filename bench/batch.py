"""Batch throughput: events per second streamed through /v1/calculations/batch as NDJSON.

    .venv/bin/python bench/batch.py [--cases 20000] [--workers 2] [--streams 1]
    .venv/bin/python bench/batch.py --peer [--cases 200000] [--rounds 3] [--peer-seconds 10]
    .venv/bin/python bench/batch.py --instructions
    .venv/bin/python bench/batch.py --service-instructions

One applicant and one event per line (the seed matters, 2014–2024), streamed in and out
through the gateway as one request, as a county's system sends its list (the gateway spreads
it over the calculator workers in parts), or as `--streams` requests side by side. Prints events
per second, the services' CPU per event (gateway, calculator workers and PostgreSQL: the
figure to set beside OpenFisca's server CPU per person) and the peak resident memory of the
largest service process.

`--peer` sets that figure beside OpenFisca's, measured in the same run: both are started, then
each round streams `--cases` events through our batch and loads OpenFisca's `/calculate` with
1,000 persons per request on 2 connections (bench/openfisca.py) for `--peer-seconds`; it prints
each round's ratio of CPU per person to CPU per event, and their median.

`--instructions` counts, under callgrind, what the calculator does for one line in process
(parse, check against the registry, decide, render, serialise; not the ledger read or the
socket): a figure that does not move with the machine's load, for comparing changes.
`--service-instructions` counts the same for a calculator service under callgrind, sent
batches over HTTP as the gateway sends its parts (the ledger read, the event loop, uvicorn and
the sockets included): the system is started, then a second calculator under valgrind on the
same databases and registry; after a warm-up batch its counters are zeroed before and dumped
after a batch of 2,000 and one of 6,000 cases, and the difference per case is printed. It
takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import itertools
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openfisca
from harness import CpuMeter, enterprise_id, instructions_per_unit, processes, system, uvicorn, wait
from testkit import create_database, drop_database, free_port

CHUNK_BYTES = 64 * 1024
PEER_PERSONS = 1000
MATTERS = [
    ("patent.invention.granted", {}),
    ("patent.utility_model.granted", {}),
    ("enterprise.high_tech.recognized", {}),
    ("enterprise.innovative.recognized", {"level": "provincial"}),
    ("testing_fee.incurred", {"fee_yuan": 120000}),
]


def lines(count: int, part: int = 0, parts: int = 1) -> Iterator[bytes]:
    """NDJSON calculation requests (every `parts`-th from `part`), produced as they are sent.

    Cheaply: the load shares the machine's cores with the services it measures.
    """
    rng = random.Random(7 + part)
    for i in range(part, count, parts):
        matter, attributes = rng.choice(MATTERS)
        case = {
            "applicant": {"id": enterprise_id(i % 100000), "kind": "enterprise",
                          "region": rng.choice(["510502", "510521", "510500-GX"])},
            "events": [{"matter": matter, "date": f"{rng.randint(2015, 2024)}-06-01",
                        "subject": f"S{i}", "attributes": attributes}],
        }  # fmt: skip
        yield orjson.dumps(case) + b"\n"


def peak_rss_mb() -> float:
    """The largest VmHWM among the processes `scripts/run.py` started (the three services)."""
    parents: dict[int, int] = {}
    launchers = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if b"scripts/run.py" in cmdline:
            launchers.add(int(entry.name))
    peaks = []
    for pid, parent in parents.items():
        if parent not in launchers:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peaks += [
            int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM")
        ]
    return max(peaks, default=0.0)


async def chunked(body: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Lines sent about 64 KB per write, not a write per line: see examples/payout.py."""
    chunk: list[bytes] = []
    size = 0
    for line in body:
        chunk.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


async def _stream(gateway: str, key: str, cases: int, part: int, parts: int) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson",
               "Accept": "application/x-ndjson"}  # fmt: skip

    answers = problems = 0
    pending = b""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=120)
    async with (
        aiohttp.ClientSession(gateway, timeout=timeout) as session,
        session.post(
            "/v1/calculations/batch", data=chunked(lines(cases, part, parts)), headers=headers
        ) as response,
    ):
        async for chunk in response.content.iter_any():
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                if line:
                    answers += 1
                    problems += b'"results"' not in line
    return answers, problems


def stream(gateway: str, key: str, cases: int, part: int, parts: int) -> tuple[int, int]:
    """Send one part of the cases as one NDJSON request, reading answers while it is sent
    (duplex: a client that reads only after sending would stall the stream); count them."""
    return asyncio.run(_stream(gateway, key, cases, part, parts))


def measure(cases: int, workers: int, streams: int) -> dict[str, Any]:
    """Events per second and peak memory for `cases` events in `streams` requests over
    `workers` calculator workers."""
    with system(SUBSIDY_CALCULATOR_WORKERS=str(workers)) as (gateway, key, _, meter):
        return one_run(gateway, key, meter, cases, workers, streams)


def one_run(
    gateway: str, key: str, meter: CpuMeter, cases: int, workers: int, streams: int
) -> dict[str, Any]:
    """`measure`'s figures for one load of a system already started."""
    meter.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        counts = list(pool.map(lambda p: stream(gateway, key, cases, p, streams), range(streams)))
    elapsed = time.perf_counter() - started
    cpu = meter.stop()
    rss = peak_rss_mb()
    # uvicorn's supervisor listens too, and does next to nothing.
    worker_seconds = meter.processes["calculator"][:workers]
    answers = sum(a for a, _ in counts)
    return {"answers": answers, "problems": sum(p for _, p in counts), "seconds": elapsed,
            "per_second": answers / elapsed, "peak_rss_mb": rss,
            "worker_shares": [s / (sum(worker_seconds) or 1) for s in worker_seconds],
            **{f"cpu_us {name}": 1e6 * seconds / answers for name, seconds in cpu.items()}}  # fmt: skip


def cpu_per_event(run: dict[str, Any]) -> float:
    """The services' CPU µs per event: the figure set beside the peer's per person."""
    return float(sum(us for name, us in run.items() if name.startswith("cpu_us ")))


def against_peer(
    cases: int, workers: int, rounds: int, seconds: int
) -> list[tuple[dict[str, Any], openfisca.Run]]:
    """Our batch and OpenFisca's 1,000-person requests (2 connections), loaded in turn
    `rounds` times, both servers started first and kept up: on a machine whose speed drifts by
    tens of percent within minutes, only loads taken close together compare."""
    openfisca.environment()
    pairs = []
    with (
        system(SUBSIDY_CALCULATOR_WORKERS=str(workers)) as (gateway, key, _, meter),
        openfisca.serve(2) as (url, master, _),
        tempfile.TemporaryDirectory() as scripts,
    ):
        calculate = f"{url}/calculate"
        openfisca.check(calculate, PEER_PERSONS)
        openfisca.wrk(calculate, PEER_PERSONS, 2, 2, master, Path(scripts))  # warm-up
        one_run(gateway, key, meter, min(cases, 20_000), workers, 1)  # warm-up
        for _ in range(rounds):
            ours = one_run(gateway, key, meter, cases, workers, 1)
            peer = openfisca.wrk(calculate, PEER_PERSONS, seconds, 2, master, Path(scripts))
            pairs.append((ours, peer))
    return pairs


_PER_UNIT = 10


async def _direct(url: str, first: int, count: int) -> int:
    """Cases `first` to `first + count - 1` sent to a calculator's batch endpoint as the gateway
    sends a part; the answers counted."""

    headers = {"Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson",
               "X-First-Case-Index": str(first)}  # fmt: skip
    answers = 0
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/v1/calculations/batch",
            data=chunked(itertools.islice(lines(first + count), first, None)),
            headers=headers,
        ) as response,
    ):
        async for chunk in response.content.iter_any():
            answers += chunk.count(b"\n")
    return answers


SERVICE_CASES = (2000, 6000)


def service_instructions() -> float:
    """Instructions per case of a calculator service under callgrind (`--service-instructions`)."""
    database = asyncio.run(create_database("bench_cg"))
    registry = free_port()
    port = free_port()
    out = tempfile.mkdtemp()
    env = {"CALCULATOR_DATABASE_URL": database, "PYTHONHASHSEED": "0",
           "CALCULATOR_REGISTRY_URL": f"http://127.0.0.1:{registry}",
           "CALCULATOR_LOG_LEVEL": "WARNING"}  # fmt: skip
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p"]
    try:
        with (
            system(SUBSIDY_REGISTRY_PORT=str(registry), CALCULATOR_DATABASE_URL=database),
            processes(([*valgrind, *uvicorn("calculator.main:create_app", port)], env)),
        ):
            url = f"http://127.0.0.1:{port}"
            wait(f"{url}/readyz", timeout=900)
            asyncio.run(_direct(url, 0, 3000))  # warm-up
            counts = []
            first = 3000
            for cases in SERVICE_CASES:
                subprocess.run(["callgrind_control", "--zero", port_pid(port)], check=True,
                               capture_output=True)  # fmt: skip
                if asyncio.run(_direct(url, first, cases)) != cases:
                    raise SystemExit(f"the calculator did not answer all {cases} cases")
                first += cases
                subprocess.run(["callgrind_control", "--dump", port_pid(port)], check=True,
                               capture_output=True)  # fmt: skip
                dumps = sorted(glob.glob(f"{out}/cg.*.*"), key=os.path.getmtime)
                counts.append(_summary(dumps[-1]))
    finally:
        asyncio.run(drop_database(database))
    return (counts[1] - counts[0]) / (SERVICE_CASES[1] - SERVICE_CASES[0])


def port_pid(port: int) -> str:
    """The process listening on the port (valgrind's, for callgrind_control)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    return re.findall(r"pid=(\d+)", out.stdout)[0]


def _summary(dump: str) -> int:
    with open(dump) as lines_:
        for line in lines_:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise SystemExit(f"no summary in {dump}")


def cases_once(cases: int) -> None:
    """Take the first `cases` of 11,000 lines through the calculator's steps for one line."""
    import datetime as dt

    from calculator.calculations import service
    from calculator.calculations.schemas import CalculationIn
    from calculator.engine.decide import decide
    from calculator.engine.model import EMPTY_LEDGER
    from engine import seed_rules

    rules = seed_rules()
    today = dt.date(2026, 1, 1)
    raw = list(lines(1100 * _PER_UNIT))
    for line in raw[:cases]:
        applicant, events = service.validate(CalculationIn.model_validate_json(line), rules, today)
        answer = service.render(decide(applicant, events, rules, EMPTY_LEDGER))
        answer["case_index"] = 0
        orjson.dumps(answer, option=orjson.OPT_APPEND_NEWLINE)


def main() -> None:
    """Stream the cases and report throughput and memory, or count instructions."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--streams", type=int, default=1, help="requests side by side")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--service-instructions", action="store_true")
    parser.add_argument("--peer", action="store_true", help="alternate with OpenFisca's batch")
    parser.add_argument("--rounds", type=int, default=3, help="with --peer")
    parser.add_argument("--peer-seconds", type=int, default=10, help="with --peer")
    parser.add_argument("--cases-once", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cases_once is not None:
        cases_once(args.cases_once)
        return
    if args.instructions:
        per_unit = instructions_per_unit(
            lambda units: [sys.executable, __file__, "--cases-once", str(units * _PER_UNIT)]
        )
        print(f"{per_unit / _PER_UNIT:,.0f} instructions per line in the calculator")
        return
    if args.service_instructions:
        print(f"{service_instructions():,.0f} instructions per case in the calculator service")
        return
    if args.peer:
        report_against_peer(against_peer(args.cases, args.workers, args.rounds, args.peer_seconds))
        return
    r = measure(args.cases, args.workers, args.streams)
    print(f"{r['answers']:.0f} answers ({r['problems']:.0f} problems) in {r['seconds']:.1f} s, "
          f"{args.streams} stream(s), {args.workers} calculator workers: "
          f"{r['per_second']:,.0f} events/s; "
          f"peak RSS of the largest service process {r['peak_rss_mb']:.0f} MB")  # fmt: skip
    spent = {
        name.removeprefix("cpu_us "): us for name, us in r.items() if name.startswith("cpu_us ")
    }
    print(f"services' CPU per event: {sum(spent.values()):.1f} µs ("
          + ", ".join(f"{name} {us:.1f}" for name, us in spent.items()) + ")")  # fmt: skip
    print("calculator workers' shares of the work: "
          + " / ".join(f"{share:.0%}" for share in r["worker_shares"]))  # fmt: skip


def report_against_peer(pairs: list[tuple[dict[str, Any], openfisca.Run]]) -> None:
    print(f"round  our events/s  our CPU µs/event  OpenFisca µs/person ({PEER_PERSONS:,} per"
          " request, 2 connections)  ratio")  # fmt: skip
    ratios = []
    for i, (ours, peer) in enumerate(pairs, 1):
        ratios.append(peer.cpu_us_per_person / cpu_per_event(ours))
        print(f"{i:>5}  {ours['per_second']:>12,.0f}  {cpu_per_event(ours):>16.1f}  "
              f"{peer.cpu_us_per_person:>19.0f}  {ratios[-1]:>5.1f}×"
              + (f"  ({ours['problems']:.0f} problems)" if ours["problems"] else ""))  # fmt: skip
    print(f"median of the rounds' ratios: {statistics.median(ratios):.1f}× less CPU per event"
          " than OpenFisca per person")  # fmt: skip


if __name__ == "__main__":
    main()
