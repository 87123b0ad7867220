"""Session-wide real services (started if not running, reused if they are) and per-test isolation:
every test gets its own topic prefix, consumer group / app id and database, so tests never see each
other's data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg
import pytest

from crownstream.settings import Settings
from tests.support.services import ensure_kafka, ensure_postgres
from tests.support.workers import Worker, stop_all, worker_settings


def pytest_configure(config):
    # The tests' workers and in-process sinks run in development mode: they start with the development keys
    # unless a test sets its own secrets (tests/integration/test_secrets.py starts workers without it).
    os.environ.setdefault("CROWNSTREAM_DEV_MODE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return ensure_kafka()


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    return ensure_postgres()


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def database_url(postgres_dsn: str, unique_id: str):
    """A fresh database per test (SQLAlchemy URL), dropped afterwards."""
    name = f"test_{unique_id}"
    admin = await asyncpg.connect(f"{postgres_dsn}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"postgresql+asyncpg://{postgres_dsn.removeprefix('postgresql://')}/{name}"
    admin = await asyncpg.connect(f"{postgres_dsn}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(kafka_bootstrap: str, unique_id: str, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{unique_id}.",
        app_id=f"cs-{unique_id}",
        topic_partitions=4,
        data_dir=str(tmp_path / "workers"),
        log_json=False,
        # /ops/* and other staff routes need it (tests that check credentials set their own).
        staff_token="test-staff-token",
    )


@pytest.fixture
async def topics(settings: Settings):
    from crownstream.streams.admin import ensure_topics

    return await ensure_topics(settings=settings)


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path):
    """Factory: start a real ``crownstream worker`` process of this test's app; all are stopped at the end."""
    started: list[Worker] = []

    def start(wait: bool = True, **overrides) -> Worker:
        ws = worker_settings(settings, tmp_path, **overrides)
        worker = Worker(ws, tmp_path / f"worker-{ws.web_port}.log").start()
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    stop_all(started, timeout=20)
