"""The calculator's own cost for a claim, without HTTP: `claims.service.submit` called in
process on a throwaway PostgreSQL database, with the whole seed registry.

    .venv/bin/python bench/claims_inprocess.py [--claims 4000] [--concurrency 64]
        [--applicants 500]

Each claim is new (its own key and patent number) for one of the applicants, as in
`bench/claims.py`. Prints claims per second, this process's CPU per claim (PostgreSQL runs in
its own processes), and how many transactions were opened without and with the locks.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import sys
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import ClassVar

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calculator.calculations.endpoints import check_scope
from calculator.claims import service
from calculator.claims.ledger import ClaimTransaction
from calculator.claims.postgres import PostgresClaims
from calculator.claims.schemas import ClaimIn
from calculator.config import Settings
from calculator.main import SERVICE
from claims import applicant_ids
from engine import seed_rules
from harness import create_database, drop_database
from subsidy_common.database import driver_dsn, migrate


class CountedClaims(PostgresClaims):
    """Claims that count the transactions they open, by kind."""

    opened: ClassVar[collections.Counter[str]] = collections.Counter()

    def transaction(
        self, *, optimistic: bool = False
    ) -> AbstractAsyncContextManager[ClaimTransaction]:
        self.opened["without locks" if optimistic else "with locks"] += 1
        if not optimistic:  # as earlier code, which knew no other kind, asked for it
            return super().transaction()
        return super().transaction(optimistic=optimistic)


async def run(count: int, concurrency: int, applicants: int) -> None:
    url = await create_database("bench_claims")
    try:
        await migrate(Settings().migrations_dir(SERVICE), url)
        dsn = driver_dsn(url)
        assert dsn is not None
        claims = await CountedClaims.open(dsn, max_size=20)
        rules = seed_rules()
        ids = applicant_ids(applicants)
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> tuple[int, bytes]:
            body = ClaimIn.model_validate(
                {
                    "applicant": {"id": ids[i % applicants], "kind": "enterprise",
                                  "name": "示例企业", "region": "510502"},
                    "event": {"matter": "patent.invention.granted", "date": "2016-05-10",
                              "subject": f"ZL{i}"},
                }
            )  # fmt: skip
            async with gate:
                return await service.submit(
                    claims, caller=service.Caller(tenant_id="bench"), key=f"k{i}", claim=body,
                    rules=rules, today=dt.date.today(), now=lambda: dt.datetime.now(dt.UTC),
                    check_scope=check_scope,
                )  # fmt: skip

        await asyncio.gather(*(one(-1 - i) for i in range(200)))  # warm-up
        CountedClaims.opened.clear()
        started, cpu = time.perf_counter(), time.process_time()
        answers = await asyncio.gather(*(one(i) for i in range(count)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await claims.close()
    finally:
        await drop_database(url)
    granted = sum(status == 201 for status, _ in answers)
    print(f"{count} claims ({granted} answered 201), {concurrency} at a time: "
          f"{count / elapsed:,.0f}/s, {1e3 * cpu / count:.2f} ms of this process's CPU each; "
          f"transactions: {dict(CountedClaims.opened)}")  # fmt: skip


def main() -> None:
    """Submit the claims and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--applicants", type=int, default=500)
    args = parser.parse_args()
    uvloop.run(run(args.claims, args.concurrency, args.applicants))


if __name__ == "__main__":
    main()
