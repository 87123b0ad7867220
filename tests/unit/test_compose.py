"""docker-compose.yml cannot run here (no Docker engine), so this keeps it in step with deploy/ and settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from crownstream.settings import Settings

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
    pom_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", (REPO / "deploy/kafka/pom.xml").read_text()).group(1)
    assert deploy_default("CROWNSTREAM_KAFKA_VERSION") == pom_version
    assert services["kafka"]["image"] == f"apache/kafka:{pom_version}"
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, as deploy/kafka/server.properties.in
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1  # exactly_once needs transactions on 1 broker


def test_host_ports_match_deploy_defaults():
    assert f"{deploy_default('CROWNSTREAM_KAFKA_PORT')}:19092" in services["kafka"]["ports"]
    assert any(p.startswith(f"{deploy_default('CROWNSTREAM_PG_PORT')}:") for p in services["postgres"]["ports"])
    defaults = Settings()
    assert defaults.kafka_bootstrap == f"127.0.0.1:{deploy_default('CROWNSTREAM_KAFKA_PORT')}"
    assert f":{deploy_default('CROWNSTREAM_PG_PORT')}/" in defaults.database_url


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
    assert "ports" not in worker, "fixed host ports would make `--scale worker=N` fail"
    assert "container_name" not in worker
    assert worker["environment"]["CROWNSTREAM_WEB_PORT"] in {str(p) for p in worker["expose"]}


def test_worker_image_copies_every_package():
    dockerfile = (REPO / "deploy/docker/worker.Dockerfile").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    for folder in re.findall(r'^"crownstream\.\w+" = "(\w+)"', pyproject, flags=re.M):
        assert f"COPY {folder} {folder}" in dockerfile, f"worker image misses {folder}/"
