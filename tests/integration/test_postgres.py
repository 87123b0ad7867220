"""SQLAlchemy (async) + asyncpg against the PostgreSQL server deploy/ starts."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import create_async_engine


async def test_row_round_trips_through_sqlalchemy_and_asyncpg(database_url):
    metadata = MetaData()
    teams = Table("teams", metadata, Column("id", Integer, primary_key=True), Column("name", String(100)))
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(teams.insert(), [{"id": 1, "name": "Alpha"}, {"id": 2, "name": "Ωmega"}])
        async with engine.connect() as conn:
            rows = (await conn.execute(select(teams).order_by(teams.c.id))).all()
            version = (await conn.exec_driver_sql("SHOW server_version")).scalar()
        assert [tuple(r) for r in rows] == [(1, "Alpha"), (2, "Ωmega")]
        assert engine.dialect.driver == "asyncpg"
        assert int(version.split(".")[0]) >= 13
    finally:
        await engine.dispose()
