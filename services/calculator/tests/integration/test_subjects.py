"""A subject is an identifier: a patent number typed in full width, with spaces or in lower case
is one patent, paid once; a ledger kept before subjects were normalised is merged to match."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import pytest
from alembic import command
from calculator.calculations.endpoints import check_scope
from calculator.claims import service
from calculator.claims.locks import Locks
from calculator.claims.repository import balance
from calculator.claims.schemas import ClaimIn
from calculator.config import Settings
from calculator.engine.rules import RuleSet, compile_snapshot
from calculator.main import SERVICE, open_claims
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from subsidy_common.database import alembic_config, create_engine, migrate, upgrade_head

MATTER = "patent.invention.granted"
FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "zl201510000001.1")  # ｚｌ２０…


def patent_rules(**caps: str) -> RuleSet:
    regions = [
        {"code": "510000", "name": "四川省", "parent": None, "level": "province"},
        {"code": "510500", "name": "泸州市", "parent": "510000", "level": "city"},
        {"code": "510502", "name": "江阳区", "parent": "510500", "level": "county"},
    ]
    matter = {"key": MATTER, "name": MATTER, "beneficiaries": ["enterprise"], "attributes": {}}
    clause = {"id": "invention", "ref": "（二十）", "matter": MATTER, "beneficiaries": ["enterprise"],
              "amount": {"kind": "fixed", "value": "3000"}, "quote": "q", "caps": caps}  # fmt: skip
    document = {"id": "doc", "doc_no": "测试", "jurisdiction": ["510500"],
                "effective_from": "2015-01-01", "effective_to": None, "repealed_date": None,
                "clauses": [clause]}  # fmt: skip
    return compile_snapshot(
        {"version": "subjects", "regions": regions, "matters": [matter], "documents": [document]}
    )


async def test_one_subject_typed_two_ways_becomes_one_balance(empty_database: str) -> None:
    scripts = Settings().migrations_dir(SERVICE)
    await asyncio.to_thread(command.upgrade, alembic_config(scripts, empty_database), "c0004")
    engine = create_engine(empty_database)
    try:
        async with engine.begin() as connection:
            for subject, granted in (("zl201510000001.1", 1000), ("ZL 201510000001.1", 500),
                                     ("ZL201510000002.1", 3000)):  # fmt: skip
                await connection.execute(
                    text("INSERT INTO ledger_balance VALUES ('A', :m, :s, :g)"),
                    {"m": MATTER, "s": subject, "g": granted},
                )
            await connection.execute(
                text(
                    "INSERT INTO claim (id, tenant_id, applicant_id, applicant_kind, applicant_name,"
                    " name_key, region, matter, subject, event_date, status, initial_status,"
                    " amount, entitlement, previously_granted, duplicate_of, decision,"
                    " registry_version, created_at) VALUES ('c1', 't', 'A', 'enterprise', '', '',"
                    " '510502', :m, :s, '2016-05-10', 'granted',"
                    " 'granted', 1000, 1000, 0, '[]', '{}', 'v', '2026-01-01T00:00:00+00:00')"
                ),
                {"m": MATTER, "s": FULL_WIDTH},
            )
        await asyncio.to_thread(upgrade_head, scripts, empty_database)
        async with engine.connect() as connection:  # through the table's type: SQLite holds fen
            balances = (
                await connection.execute(
                    select(balance.c.subject, balance.c.granted).order_by(balance.c.subject)
                )
            ).all()
            claims = (await connection.execute(text("SELECT subject FROM claim"))).scalars().all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in balances] == [
        ("2015100000011", Decimal(1500)),
        ("2015100000021", Decimal(3000)),
    ]
    assert claims == ["2015100000011"]


async def merged(
    database: str, revision: str, subjects: tuple[str, ...]
) -> tuple[list[tuple[str, Decimal]], list[str]]:
    """Balances of 3000 and a payment counted for each subject, kept at `revision`, then the
    migrations to the head: the balances, and the subjects whose payments are counted."""
    scripts = Settings().migrations_dir(SERVICE)
    await asyncio.to_thread(command.upgrade, alembic_config(scripts, database), revision)
    engine = create_engine(database)
    try:
        async with engine.begin() as connection:
            for subject in subjects:
                await connection.execute(  # through the table's type: SQLite holds fen
                    insert(balance).values(
                        applicant_id="A", matter=MATTER, subject=subject, granted=Decimal(3000)
                    )
                )
                await connection.execute(
                    text("INSERT INTO subject_payment VALUES (:m, :s, 1)"),
                    {"m": MATTER, "s": subject},
                )
        await asyncio.to_thread(upgrade_head, scripts, database)
        async with engine.connect() as connection:
            balances = (
                await connection.execute(select(balance.c.subject, balance.c.granted))
            ).all()
            counted = (
                (await connection.execute(text("SELECT subject FROM subject_payment")))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    return [tuple(row) for row in balances], list(counted)


async def test_subjects_written_with_punctuation_are_merged(empty_database: str) -> None:
    """Before punctuation was dropped, `ZL201510000001.1` and `ZL201510000001·1` were two
    patents, each paid in full."""
    balances, counted = await merged(
        empty_database, "c0009", ("ZL201510000001.1", "ZL201510000001·1")
    )
    assert balances == [("2015100000011", Decimal(6000))]
    assert len(counted) == 0


async def test_subjects_written_with_their_labels_are_merged(empty_database: str) -> None:
    """Before a patent number's labels were passed over, `专利号ZL201510000001.1` and
    `ZL201510000001.1号` were each a patent of their own, paid in full."""
    balances, counted = await merged(
        empty_database, "c0010", ("2015100000011", "专利号ZL201510000001.1", "ZL201510000001.1号")
    )
    assert balances == [("2015100000011", Decimal(9000))]
    assert counted == ["2015100000011"]  # its own count stays; the labelled ones' start again


async def test_old_patents_labelled_or_bracketed_are_merged(empty_database: str) -> None:
    """Before a label's colon and brackets were passed over, `专利号：98123456.X` and
    `(98123456.X)` were each a patent of their own, paid in full."""
    balances, counted = await merged(
        empty_database, "c0012", ("98123456X", "专利号:98123456.X", "(98123456.X)")
    )
    assert balances == [("98123456X", Decimal(9000))]
    assert counted == ["98123456X"]


async def test_identity_numbers_written_with_their_labels_are_merged(empty_database: str) -> None:
    """Before a 身份证号码's or a 统一社会信用代码's label was passed over, `身份证号：…` was a
    person of its own, paid in full."""
    balances, counted = await merged(
        empty_database,
        "c0013",
        (
            "11010519491231002X",
            "身份证号:11010519491231002X",
            "统一社会信用代码:91510500MA62B8XY4F",
        ),
    )
    assert sorted(balances) == [
        ("11010519491231002X", Decimal(6000)),
        ("91510500MA62B8XY4F", Decimal(3000)),
    ]
    assert counted == ["11010519491231002X"]


async def test_numbers_among_words_or_with_other_dashes_are_merged(empty_database: str) -> None:
    """Before words in Chinese around a number were passed over, `身份证号：…（本人）` was a
    person of its own, and `HT−2024−001` (a minus sign) a contract other than `HT-2024-001`."""
    balances, counted = await merged(
        empty_database,
        "c0014",
        (
            "11010519491231002X",
            "身份证号:11010519491231002X(本人)",
            "授权ZL201510000001.1",
            "HT2024001",
            "HT−2024−001",
        ),
    )
    assert sorted(balances) == [
        ("11010519491231002X", Decimal(6000)),
        ("2015100000011", Decimal(3000)),
        ("HT2024001", Decimal(6000)),
    ]
    assert sorted(counted) == ["11010519491231002X", "HT2024001"]


@pytest.mark.parametrize("caps", [{}, {"per_applicant_year": "3000"}])
async def test_a_patent_typed_another_way_is_not_paid_again(
    empty_database: str, caps: dict[str, str]
) -> None:
    await migrate(Settings().migrations_dir(SERVICE), empty_database)
    engine = create_engine(empty_database)
    claims = await open_claims(empty_database, async_sessionmaker(engine), Locks())
    rules = patent_rules(**caps)

    async def submit(key: str, subject: str) -> dict[str, Any]:
        body = ClaimIn.model_validate(
            {
                "applicant": {"id": "91510500MA62B8XY4F", "kind": "enterprise", "region": "510502"},
                "event": {"matter": MATTER, "date": "2016-05-10", "subject": subject},
            }
        )
        status, answer = await service.submit(
            claims, caller=service.Caller(tenant_id="t"), key=key, claim=body, rules=rules,
            today=dt.date(2026, 1, 1), now=lambda: dt.datetime.now(dt.UTC), check_scope=check_scope,
        )  # fmt: skip
        assert status == 201
        result: dict[str, Any] = orjson.loads(answer)
        return result

    try:
        first = await submit("k1", "ZL201510000001.1")
        assert (first["status"], first["amount"]) == ("granted", "3000.00")
        for i, typed in enumerate(
            [
                FULL_WIDTH,
                "zl 2015-1000-0001.1",
                "ZL201510000001.1\u200b",
                "ZL201510000001.1\x01",
                "ZL201510000001·1",
                "ZL201510000001。1",
                "ZL2015.10000001.1",
                "ZL2015/1000/0001/1",
                "201510000001.1",
                "CN201510000001.1",
                "专利号ZL201510000001.1",
                "专利号：ZL201510000001.1",
                "ZL201510000001.1号",
                "ZL201510000001.1(发明)",
                "ZL201510000001.1（已授权）",
                "授权公告号：CN201510000001.1",
                "授权专利ZL201510000001.1",
            ]
        ):
            again = await submit(f"k{i + 2}", typed)
            assert (again["status"], again["amount"]) == ("duplicate", "0.00"), typed
            assert again["duplicate_of"] == [first["id"]]
        # Another patent: paid, unless the clause's yearly cap is used up (nothing granted for
        # it before, so not a duplicate).
        other = await submit("k-other", "ZL201510000002.1")
        expected = ("cap_exhausted", "0.00") if caps else ("granted", "3000.00")
        assert (other["status"], other["amount"]) == expected
        assert other["duplicate_of"] == []
    finally:
        await claims.close()
        await engine.dispose()
