"""Claims per second through the gateway on PostgreSQL, every guarantee on.

    .venv/bin/python bench/claims.py [--seconds 10] [--connections 64] [--history 0]

Each request is a new claim (its own Idempotency-Key and patent number) for one of 500
applicants, so every request reads the ledger, decides, and in one statement checks that no
locked claim holds its key or applicant, moves the balance by compare-and-set and stores the
replayable response; a claim refused there is tried again holding the locks
(`calculator/claims/postgres.py`).

`--history N` gives each applicant N earlier grants (other patents, already in its ledger)
before the load starts, as an enterprise has after years of claims.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from harness import create_database, drop_database, enterprise_id, system

SCRIPT = """
local counter = 0
local ids = {%(ids)s}
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", threads)  -- a global in the thread's own state
end
request = function()
  counter = counter + 1
  local subject = "ZL" .. thread_id .. "-" .. counter
  local applicant = ids[(counter %% #ids) + 1]
  local body = '{"applicant": {"id": "' .. applicant .. '", "kind": "enterprise", "name": "示例企业", "region": "510502"},'
    .. '"event": {"matter": "patent.invention.granted", "date": "2016-05-10", "subject": "' .. subject .. '"}}'
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer %(key)s"
  headers["Idempotency-Key"] = subject
  return wrk.format("POST", "/v1/claims", headers, body)
end
"""


def applicant_ids(count: int) -> list[str]:
    """Valid 统一社会信用代码, one per benchmark applicant."""
    return [enterprise_id(i) for i in range(count)]


def main() -> None:
    """Load the claims endpoint and print claims per second with latency percentiles."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--history", type=int, default=0, help="earlier grants per applicant")
    args = parser.parse_args()
    url = asyncio.run(create_database("bench_claims"))
    try:
        run(args, url)
    finally:
        asyncio.run(drop_database(url))


async def give_history(url: str, applicants: list[str], grants: int) -> None:
    """`grants` earlier invention-patent grants of 3,000 yuan in each applicant's ledger."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(
            """INSERT INTO ledger_balance (applicant_id, matter, subject, granted)
               SELECT a, 'patent.invention.granted', 'ZL-earlier-' || n, 3000
                 FROM unnest($1::text[]) AS a, generate_series(1, $2) AS n""",
            applicants,
            grants,
        )
    finally:
        await connection.close()


def run(args: argparse.Namespace, url: str) -> None:
    """Start the system on the database at `url`, load it and print the figures."""
    with system(CALCULATOR_DATABASE_URL=url) as (gateway, key, ready, meter):
        applicants = applicant_ids(500)
        if args.history:
            asyncio.run(give_history(url, applicants, args.history))
        ids = ",".join(f'"{i}"' for i in applicants)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(SCRIPT % {"ids": ids, "key": key})
        meter.start()
        out = subprocess.run(
            ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", "-s", script.name,
             f"{gateway}/v1/claims"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cpu = meter.stop()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(f"ready after start: {ready:.1f} s; {args.connections} connections, {args.seconds} s; "
          f"{args.history} earlier grants per applicant")  # fmt: skip
    print(f"claims per second: {rps.group(1) if rps else '?'}; p50 {p50.group(1) if p50 else '?'}, "
          f"p99 {p99.group(1) if p99 else '?'}; non-2xx: {errors.group(1) if errors else 0}")  # fmt: skip
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    print("CPU per claim: " + ", ".join(f"{name} {1000 * seconds / done:.2f} ms"
                                         for name, seconds in cpu.items()))  # fmt: skip


if __name__ == "__main__":
    main()
