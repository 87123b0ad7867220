"""The worker's PostgreSQL engine (ledger, webhook endpoints, feed) and schema migrations.

One async engine per process and database URL: asyncpg connections are bound to the event loop that
opened them, so tests that run several loops ask for an engine of their own with ``create_engine``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from crownstream.settings import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_engines: dict[str, AsyncEngine] = {}


def dumps_json(value: Any) -> str:
    """JSON for JSONB columns. orjson (about 10x the standard library on a delivery request); a value it refuses
    — an integer beyond 64 bits, a dict with non-string keys — goes through the standard library as before,
    so the faster encoder never turns a storable row into an error."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def create_engine(settings: Settings | None = None, url: str | None = None) -> AsyncEngine:
    settings = settings or get_settings()
    return create_async_engine(
        url or settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # A connection that died with PostgreSQL (restart, failover) is replaced instead of failing a batch.
        pool_pre_ping=True,
        pool_recycle=1800,
        json_serializer=dumps_json,
        json_deserializer=orjson.loads,
    )


def engine(settings: Settings | None = None) -> AsyncEngine:
    settings = settings or get_settings()
    if settings.database_url not in _engines:
        _engines[settings.database_url] = create_engine(settings)
    return _engines[settings.database_url]


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (synchronous: alembic drives its own event loop in env.py)."""
    from alembic import command

    command.upgrade(alembic_config(url or get_settings().database_url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url or get_settings().database_url), revision)
