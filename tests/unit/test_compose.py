"""docker-compose.yml cannot run here (no Docker engine), so this keeps it in step with deploy/ and settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from crownstream.settings import SECRETS, Settings

REPO = Path(__file__).resolve().parents[2]
compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
services = compose["services"]


def deploy_default(name: str) -> str:
    match = re.search(rf'{name}="\$\{{{name}:-([^}}]+)\}}"', (REPO / "deploy" / "common.sh").read_text())
    assert match, f"{name} has no default in deploy/common.sh"
    return match.group(1)


def test_services():
    assert {"kafka", "postgres", "worker"} <= set(services)


def test_kafka_image_matches_the_broker_deploy_fetches():
    pom_version = re.search(
        r"<kafka.version>([^<]+)</kafka.version>", (REPO / "deploy/kafka/pom.xml").read_text()
    ).group(1)
    assert deploy_default("CROWNSTREAM_KAFKA_VERSION") == pom_version
    assert services["kafka"]["image"] == f"apache/kafka:{pom_version}"
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, as deploy/kafka/server.properties.in
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1  # exactly_once needs transactions on 1 broker


def test_only_the_workers_http_port_is_published():
    assert "ports" not in services["kafka"], "Kafka has no authentication: it stays on compose's network"
    assert "ports" not in services["postgres"], "PostgreSQL stays on compose's network"
    (published,) = services["worker"]["ports"]
    address, host_ports, container_port = published.rsplit(":", 2)
    assert container_port == services["worker"]["environment"]["CROWNSTREAM_WEB_PORT"]
    assert address == "${CROWNSTREAM_PUBLISH_ADDRESS:-127.0.0.1}", "published on loopback unless the operator says"
    assert "-" in host_ports, "a host port range, so that `--scale worker=N` can publish each replica"
    defaults = Settings()
    assert defaults.kafka_bootstrap == f"127.0.0.1:{deploy_default('CROWNSTREAM_KAFKA_PORT')}"
    assert f":{deploy_default('CROWNSTREAM_PG_PORT')}/" in defaults.database_url


def test_secrets_come_only_from_the_environment():
    env = services["worker"]["environment"]
    for name in (f"CROWNSTREAM_{s.upper()}" for s in SECRETS):
        # ${VAR:?message}: compose refuses to start while it is unset; no default anybody could know.
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), f"{name}: {env[name]!r}"
    assert "${CROWNSTREAM_PG_PASSWORD:?" in env["CROWNSTREAM_DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${CROWNSTREAM_PG_PASSWORD:?")
    assert "CROWNSTREAM_DEV_MODE" not in env


def test_worker_environment_names_real_settings():
    env = services["worker"]["environment"]
    fields = {f"CROWNSTREAM_{name.upper()}" for name in Settings.model_fields}
    unknown = set(env) - fields
    assert not unknown, f"docker-compose.yml sets variables the settings module does not read: {unknown}"
    assert env["CROWNSTREAM_KAFKA_BOOTSTRAP"].split(":")[0] == "kafka"
    assert "@postgres:5432/" in env["CROWNSTREAM_DATABASE_URL"]
    # The settings accept every value compose passes (types, enums).
    Settings(**{k.removeprefix("CROWNSTREAM_").lower(): v for k, v in env.items() if "${" not in str(v)})


def test_worker_scales():
    worker = services["worker"]
    assert "container_name" not in worker
    assert worker["environment"]["CROWNSTREAM_WEB_PORT"] in {str(p) for p in worker["expose"]}


def test_worker_image_copies_every_package():
    dockerfile = (REPO / "deploy/docker/worker.Dockerfile").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    for folder in re.findall(r'^"crownstream\.\w+" = "(\w+)"', pyproject, flags=re.M):
        assert f"COPY {folder} {folder}" in dockerfile, f"worker image misses {folder}/"
    assert "setup.py" in dockerfile.split("RUN pip install")[0], "setup.py discovers the packages: copy it first"
