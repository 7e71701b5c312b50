"""Ledger reads for single calculations, on a real PostgreSQL: those asked in one loop turn share
one statement, and each caller gets its own applicant's ledger, as committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from calculator.claims.reads import LedgerReads
from calculator.claims.repository import text_array
from calculator.config import Settings
from calculator.engine.model import EMPTY_LEDGER
from calculator.main import SERVICE
from calculator.models import CapBalance, LedgerBalance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from subsidy_common.database import create_engine, driver_dsn, migrate

APPLICANTS = [f"91510500MA62B8X{i:03d}" for i in range(12)]
MATTER = "patent.invention.granted"


def subjects(i: int) -> list[tuple[str, str]]:
    """What the i-th applicant's calculation asks about: its own granted patent."""
    return [(MATTER, f"ZL{i}")]


@pytest.fixture
async def dsn(database_factory: Callable[[str], Awaitable[str]]) -> str:
    url = await database_factory("reads")
    await migrate(Settings().migrations_dir(SERVICE), url)
    found = driver_dsn(url)
    assert found is not None
    connection = await asyncpg.connect(found)
    try:
        for i, applicant in enumerate(APPLICANTS[:10]):
            await connection.execute(
                "INSERT INTO ledger_balance VALUES ($1, 'patent.invention.granted', $2, $3)",
                applicant, f"ZL{i}", Decimal(100 * (i + 1)),
            )  # fmt: skip
            await connection.execute(
                "INSERT INTO ledger_balance VALUES ($1, 'patent.invention.granted', 'ZL-other', 1)",
                applicant,
            )
            await connection.execute(
                "INSERT INTO cap_balance VALUES ($1, 'lead', 0, $2)", applicant, Decimal(i + 1)
            )
    finally:
        await connection.close()
    return url


@pytest.fixture
async def reads(dsn: str) -> AsyncIterator[LedgerReads]:
    engine = create_engine(dsn)
    opened = await LedgerReads.open(async_sessionmaker(engine), dsn)
    yield opened
    await opened.close()
    await engine.dispose()


class Counting:
    """Counts the statements a LedgerReads sends."""

    def __init__(self, reads: LedgerReads) -> None:
        self.statements = 0
        self.many = reads.many

        async def many(ids: Any) -> Any:
            self.statements += 1
            return await self.many(ids)

        reads.many = many  # type: ignore[method-assign]


async def test_reads_asked_in_one_turn_share_one_statement(reads: LedgerReads) -> None:
    counting = Counting(reads)
    ledgers = await asyncio.gather(
        *(reads.one(applicant, subjects(i)) for i, applicant in enumerate(APPLICANTS))
    )
    assert counting.statements == 1
    for i, (applicant, ledger) in enumerate(zip(APPLICANTS, ledgers, strict=True)):
        if i >= 10:
            assert ledger is EMPTY_LEDGER
            continue
        # Only the subject asked about: the applicant's other subjects are not read.
        assert dict(ledger.by_subject) == {(MATTER, f"ZL{i}"): Decimal(100 * (i + 1))}
        assert dict(ledger.by_cap) == {"lead": Decimal(i + 1)}
        assert ledger == await reads.one(applicant, subjects(i))  # the same as read alone
    assert counting.statements == 11


async def test_a_caller_that_gives_up_does_not_cancel_the_others(reads: LedgerReads) -> None:
    first = asyncio.ensure_future(reads.one(APPLICANTS[0], subjects(0)))
    second = asyncio.ensure_future(reads.one(APPLICANTS[1], subjects(1)))
    await asyncio.sleep(0)  # both have joined the same read
    first.cancel()
    assert (await second).by_cap == {"lead": Decimal(2)}
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_read_fails_every_caller_of_its_turn(reads: LedgerReads) -> None:
    async def broken(ids: Any) -> Any:
        raise ConnectionResetError("the database went away")

    reads.many = broken  # type: ignore[method-assign]
    outcomes = await asyncio.gather(
        *(reads.one(applicant, subjects(i)) for i, applicant in enumerate(APPLICANTS[:3])),
        return_exceptions=True,
    )
    assert all(isinstance(o, ConnectionResetError) for o in outcomes)


async def test_every_subject_asked_about_is_read_and_no_other(reads: LedgerReads) -> None:
    asked = [(MATTER, "ZL3"), (MATTER, "ZL-other"), (MATTER, "ZL-never-granted"), (MATTER, "ZL3")]
    ledger = await reads.one(APPLICANTS[3], asked)
    assert dict(ledger.by_subject) == {(MATTER, "ZL3"): Decimal(400), (MATTER, "ZL-other"): 1}
    many = await reads.many([(APPLICANTS[3], MATTER, "ZL-other"), (APPLICANTS[4], MATTER, "ZL4")])
    assert dict(many[APPLICANTS[3]].by_subject) == {(MATTER, "ZL-other"): 1}
    assert dict(many[APPLICANTS[4]].by_subject) == {(MATTER, "ZL4"): Decimal(500)}
    assert many[APPLICANTS[3]].by_cap == {"lead": Decimal(4)}


async def test_the_sqlite_form_reads_the_same(tmp_path: Any, reads: LedgerReads) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calculator.db'}"
    await migrate(Settings().migrations_dir(SERVICE), url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:  # through the tables' types: SQLite holds fen
            for i, applicant in enumerate(APPLICANTS[:10]):
                for subject, granted in ((f"ZL{i}", 100 * (i + 1)), ("ZL-other", 1)):
                    await connection.execute(
                        insert(LedgerBalance).values(
                            applicant_id=applicant, matter=MATTER, subject=subject,
                            granted=Decimal(granted),
                        )
                    )  # fmt: skip
                await connection.execute(
                    insert(CapBalance).values(
                        applicant_id=applicant, cap_key="lead", year=0, granted=Decimal(i + 1)
                    )
                )
        local = await LedgerReads.open(async_sessionmaker(engine), url)
        wanted = [(APPLICANTS[3], MATTER, "ZL3"), (APPLICANTS[4], MATTER, "ZL-never-granted")]
        assert await local.many(wanted) == await reads.many(wanted)
        assert await local.one(APPLICANTS[11], subjects(11)) is EMPTY_LEDGER
    finally:
        await engine.dispose()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Any character a JSON request can carry: not NUL (refused at the edge) nor a lone surrogate
# (JSON parsers refuse its escape; nothing could encode it as UTF-8).
@given(
    subject=st.text(
        st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12
    )
)
async def test_a_subject_of_any_characters_is_read_as_written(
    dsn: str, reads: LedgerReads, subject: str
) -> None:
    found = driver_dsn(dsn)
    assert found is not None
    connection = await asyncpg.connect(found)
    try:
        await connection.execute(
            "INSERT INTO ledger_balance VALUES ($1, $2, $3, 7) ON CONFLICT DO NOTHING",
            APPLICANTS[11], MATTER, subject,
        )  # fmt: skip
    finally:
        await connection.close()
    asked = [(APPLICANTS[11], MATTER, subject), (APPLICANTS[11], MATTER, subject + '"\\,}')]
    ledger = (await reads.many(asked))[APPLICANTS[11]]
    assert ledger.by_subject.get((MATTER, subject)) == Decimal(7)


@pytest.mark.parametrize(
    "values", [[], [""], ["NULL"], ['a"b', "c\\d", "{e}", "f,g", " h ", "中文"], ["\\", '"']]
)
async def test_a_text_array_literal_reads_back_as_the_values(dsn: str, values: list[str]) -> None:
    found = driver_dsn(dsn)
    assert found is not None
    connection = await asyncpg.connect(found)
    try:
        assert await connection.fetchval("SELECT $1::text::text[]", text_array(values)) == values
    finally:
        await connection.close()
