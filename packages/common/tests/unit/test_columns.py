"""Instants keep their offset on SQLite as they do on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Integer, MetaData, Table, create_engine, select
from subsidy_common.columns import UtcDateTime

EAST_8 = dt.timezone(dt.timedelta(hours=8))


def test_an_instant_reads_back_the_same_with_its_offset_and_compares_as_one() -> None:
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcDateTime())
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    written = dt.datetime(2024, 1, 1, 8, 30, tzinfo=EAST_8)  # 00:30 UTC
    with engine.begin() as connection:
        connection.execute(table.insert().values(id=1, at=written))
        read = connection.execute(select(table.c.at)).scalar_one()
        # 00:45 UTC written at +08:00 is later than the stored instant; 00:15 UTC is not.
        later = connection.execute(
            select(table.c.id).where(table.c.at <= dt.datetime(2024, 1, 1, 8, 45, tzinfo=EAST_8))
        ).all()
        earlier = connection.execute(
            select(table.c.id).where(table.c.at <= dt.datetime(2024, 1, 1, 0, 15, tzinfo=dt.UTC))
        ).all()
    assert read == written
    assert read.utcoffset() == dt.timedelta(0)
    assert (later, earlier) == ([(1,)], [])
