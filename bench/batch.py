"""Batch throughput: events per second streamed through /v1/calculations/batch as NDJSON.

    .venv/bin/python bench/batch.py [--cases 20000]

One applicant and one event per line (the seed matters, 2014–2024), streamed in and out
through the gateway. Prints events per second and the calculator's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import system
from stdnum.cn import uscc

MATTERS = [
    ("patent.invention.granted", {}),
    ("patent.utility_model.granted", {}),
    ("enterprise.high_tech.recognized", {}),
    ("enterprise.innovative.recognized", {"level": "provincial"}),
    ("testing_fee.incurred", {"fee_yuan": 120000}),
]


def lines(count: int) -> Iterator[bytes]:
    """NDJSON calculation requests, produced as they are sent."""
    rng = random.Random(7)
    for i in range(count):
        body = f"91510500MA{i % 100000:07d}"
        matter, attributes = rng.choice(MATTERS)
        case = {
            "applicant": {"id": body + uscc.calc_check_digit(body), "kind": "enterprise",
                          "region": rng.choice(["510502", "510521", "510500-GX"])},
            "events": [{"matter": matter, "date": f"{rng.randint(2015, 2024)}-06-01",
                        "subject": f"S{i}", "attributes": attributes}],
        }  # fmt: skip
        yield json.dumps(case).encode() + b"\n"


def peak_rss_mb(port_hint: str) -> float:
    """The largest VmHWM among the calculator's uvicorn processes."""
    out = subprocess.run(
        ["pgrep", "-f", "calculator.main:create_app"], capture_output=True, text=True
    ).stdout
    peaks = []
    for pid in out.split():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peaks += [
            int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM")
        ]
    return max(peaks, default=0.0)


def main() -> None:
    """Stream the cases and report throughput and memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=20_000)
    args = parser.parse_args()
    with system() as (gateway, key, _):
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson",
                   "Accept": "application/x-ndjson"}  # fmt: skip
        started = time.perf_counter()
        answers = problems = 0
        with (
            httpx.Client(base_url=gateway, timeout=httpx.Timeout(120, connect=5)) as client,
            client.stream(
                "POST", "/v1/calculations/batch", content=lines(args.cases), headers=headers
            ) as r,
        ):
            for line in r.iter_lines():
                if line:
                    answers += 1
                    problems += '"results"' not in line
        elapsed = time.perf_counter() - started
        rss = peak_rss_mb("calculator")
    print(f"{answers} answers ({problems} problems) in {elapsed:.1f} s: {answers / elapsed:,.0f} events/s; "
          f"calculator peak RSS {rss:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
