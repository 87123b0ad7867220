"""Fixtures of the integration tests that talk to the ledger database."""

from __future__ import annotations

import pytest

from crownstream.settings import Settings
from crownstream.sinks import db
from tests.support.sinks import migrate


@pytest.fixture
async def engine(database_url):
    """An engine on this test's own migrated ledger database (the real PostgreSQL)."""
    await migrate(database_url)
    engine = db.create_engine(Settings(database_url=database_url))
    yield engine
    await engine.dispose()
