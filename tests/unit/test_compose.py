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


# --- The three-broker layout (profile "cluster"), in step with deploy/kafka-cluster.sh and its template.

CLUSTER_NODES = sorted(name for name, s in services.items() if "cluster" in s.get("profiles", ()) and "image" in s)


def template_values(replication: int) -> dict[str, str]:
    """The replication settings of deploy/kafka/server.properties.in as deploy/kafka/node.sh renders them, as the
    apache/kafka image's environment variables name them (KAFKA_ + the property, upper case, dots as '_')."""
    min_isr = Settings(topic_replication=replication).min_insync_replicas  # node.sh's rule (tests/unit/streams)
    out = {}
    for line in (REPO / "deploy/kafka/server.properties.in").read_text().splitlines():
        if not line.startswith("#") and ("=@REPLICATION@" in line or "=@MIN_ISR@" in line):
            key, value = line.split("=")
            value = value.replace("@REPLICATION@", str(replication)).replace("@MIN_ISR@", str(min_isr))
            out["KAFKA_" + key.upper().replace(".", "_")] = value
    return out


def test_the_cluster_profile_has_the_brokers_deploy_starts():
    nodes = int(deploy_default("CROWNSTREAM_KAFKA_CLUSTER_NODES"))
    assert [f"kafka-{i}" for i in range(1, nodes + 1)] == CLUSTER_NODES
    envs = [services[n]["environment"] for n in CLUSTER_NODES]
    assert sorted(e["KAFKA_NODE_ID"] for e in envs) == [1, 2, 3]
    assert len({e["CLUSTER_ID"] for e in envs}) == 1, "one cluster id, or the nodes form no quorum"
    voters = {f"{e['KAFKA_NODE_ID']}@{n}:9093" for n, e in zip(CLUSTER_NODES, envs, strict=True)}
    for name, env in zip(CLUSTER_NODES, envs, strict=True):
        node = services[name]
        assert node["image"] == services["kafka"]["image"]
        assert "ports" not in node, "Kafka has no authentication: it stays on compose's network"
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # combined nodes, as deploy/kafka-cluster.sh
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"INTERNAL://{name}:9092"
        assert env["KAFKA_LOG_DIRS"] == node["volumes"][0].split(":")[1], "data on the node's volume"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"


def test_the_brokers_replicate_as_deploy_renders_them():
    for name in CLUSTER_NODES:
        env = services[name]["environment"]
        assert {k: str(env[k]) for k in template_values(3)} == template_values(3), name
    # the single broker: replication 1, min ISR 1 (the settings' defaults).
    single = services["kafka"]["environment"]
    assert {k: str(single[k]) for k in template_values(1) if k in single} == {
        k: v for k, v in template_values(1).items() if k in single
    }
    assert template_values(3)["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"


def test_the_cluster_workers_replicate_every_topic():
    worker, cluster = services["worker"], services["cluster-worker"]
    env = cluster["environment"]
    assert cluster["profiles"] == ["cluster"]
    assert env["CROWNSTREAM_KAFKA_BOOTSTRAP"].split(",") == [f"{n}:9092" for n in CLUSTER_NODES]
    assert set(CLUSTER_NODES) <= set(cluster["depends_on"])
    settings = Settings(**{k.removeprefix("CROWNSTREAM_").lower(): v for k, v in env.items() if "${" not in str(v)})
    assert settings.topic_replication == len(CLUSTER_NODES)
    assert str(settings.min_insync_replicas) == str(
        services[CLUSTER_NODES[0]]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]
    )
    unknown = set(env) - {f"CROWNSTREAM_{name.upper()}" for name in Settings.model_fields}
    assert not unknown, f"docker-compose.yml sets variables the settings module does not read: {unknown}"
    # The same image, health check and secrets as the single-broker workers; host ports of their own.
    for key in ("build", "healthcheck", "expose", "stop_grace_period"):
        assert cluster[key] == worker[key], key
    assert {k: v for k, v in env.items() if k.endswith(("TOKEN", "KEY", "SECRET"))} == {
        k: v for k, v in worker["environment"].items() if k.endswith(("TOKEN", "KEY", "SECRET"))
    }

    def host_ports(service: dict) -> set[int]:
        (published,) = service["ports"]
        low, high = published.rsplit(":", 2)[1].split("-")
        return set(range(int(low), int(high) + 1))

    assert not host_ports(worker) & host_ports(cluster), "both layouts can be up at once"
    assert cluster["volumes"] != worker["volumes"]
