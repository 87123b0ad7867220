"""Session-wide real services (started if not running, reused if they are) and per-test isolation:
every test gets its own topic prefix, consumer group / app id and database, so tests never see each
other's data."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from crownstream.settings import Settings
from tests.support.kafka_cleanup import delete_test_topics
from tests.support.services import (
    ensure_kafka,
    ensure_postgres,
    kafka_cluster,
    kafka_cluster_bootstrap,
    kafka_cluster_running,
)
from tests.support.workers import Worker, kill_all, worker_settings

# Property tests check behaviour, never speed: on a loaded 2-core CI machine hypothesis' default 200-ms deadline per
# example fails tests that are right (speed goals live in bench/). Each test's example count stays its own.
hypothesis_settings.register_profile("crownstream", deadline=None)
hypothesis_settings.load_profile("crownstream")


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


@pytest.fixture(scope="module")
def kafka_cluster_bootstrap_servers():
    """The three-broker cluster (deploy/kafka-cluster.sh): started if it is not running, and then stopped after the
    module's tests (three JVMs that nothing else in the suite uses); left running if it was."""
    started = not kafka_cluster_running()
    if started:
        kafka_cluster("start")
    try:
        yield kafka_cluster_bootstrap()
    finally:
        if started:
            kafka_cluster("stop")


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


async def _create_database(postgres_dsn: str, name: str) -> str:
    admin = await asyncpg.connect(f"{postgres_dsn}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://{postgres_dsn.removeprefix('postgresql://')}/{name}"


async def _drop_database(postgres_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(f"{postgres_dsn}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(postgres_dsn: str, unique_id: str):
    """A fresh database per test (SQLAlchemy URL), dropped afterwards."""
    yield await _create_database(postgres_dsn, f"test_{unique_id}")
    await _drop_database(postgres_dsn, f"test_{unique_id}")


@pytest.fixture(scope="session")
def worker_state_root(tmp_path_factory):
    """Where the tests' workers keep their RocksDB tables: in memory (/dev/shm) where the machine has it.

    A worker opens a RocksDB store per table partition (56: 14 tables on 4 partitions). On disk each open syncs
    files: ~40 ms each, measured ~4 s of a 15 s start on a loaded machine (~10 s on tmpfs). tmpfs keeps what the
    tests rely on (the files outlive a kill -9 of the worker, as on disk) without the syncs."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("workers")
        return
    root = Path(tempfile.mkdtemp(prefix="crownstream-tests-", dir=shm))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _test_settings(kafka_bootstrap: str, unique_id: str, data_dir: Path) -> Settings:
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{unique_id}.",
        app_id=f"cs-{unique_id}",
        topic_partitions=4,
        data_dir=str(data_dir),
        log_json=False,
        # /ops/* and other staff routes need it (tests that check credentials set their own).
        staff_token="test-staff-token",
    )


@pytest.fixture
def settings(kafka_bootstrap: str, unique_id: str, worker_state_root: Path):
    data_dir = worker_state_root / unique_id
    settings = _test_settings(kafka_bootstrap, unique_id, data_dir)
    yield settings
    # After the test's workers are gone (start_worker depends on this fixture, so it is torn down first).
    shutil.rmtree(data_dir, ignore_errors=True)
    delete_test_topics(kafka_bootstrap, (settings.topic_prefix, f"{settings.app_id}-"))


@pytest.fixture
async def topics(settings: Settings):
    from crownstream.streams.admin import ensure_topics

    return await ensure_topics(settings=settings)


def _worker_factory(settings: Settings, logs: Path, started: list[Worker]):
    def start(wait: bool = True, **overrides) -> Worker:
        ws = worker_settings(settings, **overrides)
        worker = Worker(ws, logs / f"worker-{ws.web_port}.log").start()
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    return start


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path):
    """Factory: start a real ``crownstream worker`` process of this test's app; all are killed at the end
    (tests/support/workers.py kill_all says why not stopped)."""
    started: list[Worker] = []
    yield _worker_factory(settings, tmp_path, started)
    kill_all(started)


# --- The same per module: for a module whose tests only ask one worker questions (each gets the same answers
# from a worker of its own, and paid its start). Its own topics, group, database and state, shared by the
# module's tests only.


@pytest.fixture(scope="module")
def module_settings(kafka_bootstrap: str, worker_state_root: Path):
    unique = uuid.uuid4().hex[:10]
    yield _test_settings(kafka_bootstrap, unique, worker_state_root / unique)
    shutil.rmtree(worker_state_root / unique, ignore_errors=True)


@pytest.fixture(scope="module")
async def module_topics(module_settings: Settings):
    from crownstream.streams.admin import ensure_topics

    return await ensure_topics(settings=module_settings)


@pytest.fixture(scope="module")
async def module_database_url(postgres_dsn: str, module_settings: Settings):
    name = f"test_{module_settings.app_id.removeprefix('cs-')}"
    yield await _create_database(postgres_dsn, name)
    await _drop_database(postgres_dsn, name)


@pytest.fixture(scope="module")
def module_start_worker(module_settings: Settings, module_topics, tmp_path_factory):
    """Factory like ``start_worker``, of the module's app; all are killed after the module's last test."""
    started: list[Worker] = []
    yield _worker_factory(module_settings, tmp_path_factory.mktemp("module-workers"), started)
    kill_all(started)
