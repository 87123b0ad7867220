"""deploy/kubernetes/ cannot be applied here (no cluster), so this keeps it consistent with itself and with
the settings, as test_compose.py does for docker-compose.yml."""

from __future__ import annotations

from pathlib import Path

import yaml

from crownstream.settings import SECRETS, Settings

REPO = Path(__file__).resolve().parents[2]
DOCS = [
    doc
    for path in sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]
BY_KIND: dict[str, list[dict]] = {}
for _doc in DOCS:
    BY_KIND.setdefault(_doc["kind"], []).append(_doc)
STATEFULSET = BY_KIND["StatefulSet"][0]
POD = STATEFULSET["spec"]["template"]["spec"]
WORKER = next(c for c in POD["containers"] if c["name"] == "worker")
CONFIG = next(c for c in BY_KIND["ConfigMap"] if c["metadata"]["name"] == "crownstream")["data"]
SETTING_NAMES = {f"CROWNSTREAM_{name.upper()}" for name in Settings.model_fields}


def test_every_crownstream_variable_is_a_setting_and_every_value_is_accepted():
    names = set(CONFIG) | {e["name"] for e in WORKER["env"] if e["name"].startswith("CROWNSTREAM_")}
    unknown = names - SETTING_NAMES
    assert not unknown, f"deploy/kubernetes sets variables the settings module does not read: {unknown}"
    Settings(**{k.removeprefix("CROWNSTREAM_").lower(): v for k, v in CONFIG.items()})


def test_statefulset_has_a_headless_service_and_a_volume_for_table_state():
    service = next(s for s in BY_KIND["Service"] if s["metadata"]["name"] == STATEFULSET["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    labels = STATEFULSET["spec"]["template"]["metadata"]["labels"]
    for svc in BY_KIND["Service"]:
        assert svc["spec"]["selector"].items() <= labels.items(), f"{svc['metadata']['name']} selects no worker"
    claim = STATEFULSET["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    mount = next(m for m in WORKER["volumeMounts"] if m["name"] == claim)
    assert mount["mountPath"] == CONFIG["CROWNSTREAM_DATA_DIR"]


def test_probes_use_liveness_and_readiness_endpoints_on_the_web_port():
    port = next(p for p in WORKER["ports"] if p["name"] == "http")
    assert str(port["containerPort"]) == CONFIG["CROWNSTREAM_WEB_PORT"]
    assert WORKER["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert WORKER["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert WORKER[probe]["httpGet"]["port"] in ("http", port["containerPort"])
    assert CONFIG["CROWNSTREAM_WEB_HOST"] == "0.0.0.0"  # probes and other workers come from outside the pod


def test_canonical_url_is_the_pods_stable_name_behind_the_headless_service():
    url = next(e["value"] for e in WORKER["env"] if e["name"] == "CROWNSTREAM_CANONICAL_URL")
    defined = [e["name"] for e in WORKER["env"]]
    assert url.startswith(f"http://$(POD_NAME).{STATEFULSET['spec']['serviceName']}.")
    assert url.endswith(f":{CONFIG['CROWNSTREAM_WEB_PORT']}")
    # Kubernetes expands $(VAR) only from variables defined earlier in the list.
    assert defined.index("POD_NAME") < defined.index("CROWNSTREAM_CANONICAL_URL")
    assert defined.index("POD_NAMESPACE") < defined.index("CROWNSTREAM_CANONICAL_URL")


def test_secrets_come_from_a_secret_and_shutdown_is_graceful():
    for name in ("CROWNSTREAM_DATABASE_URL", *(f"CROWNSTREAM_{s.upper()}" for s in SECRETS)):
        entry = next(e for e in WORKER["env"] if e["name"] == name)
        assert "secretKeyRef" in entry["valueFrom"], f"{name} must not be a plain value"
        assert name not in CONFIG
    # No Secret with a value in it: whatever the file said would be a value everybody knows.
    assert "Secret" not in BY_KIND
    # The grace period must leave time to commit and leave the group before the kubelet's SIGKILL.
    assert POD["terminationGracePeriodSeconds"] > float(CONFIG["CROWNSTREAM_SESSION_TIMEOUT_S"])
    assert int(CONFIG["CROWNSTREAM_TABLE_STANDBY_REPLICAS"]) >= 1


def test_only_the_http_port_takes_connections():
    policy = BY_KIND["NetworkPolicy"][0]
    assert (
        policy["spec"]["podSelector"]["matchLabels"].items()
        <= STATEFULSET["spec"]["template"]["metadata"]["labels"].items()
    )
    ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert ports == [int(CONFIG["CROWNSTREAM_WEB_PORT"])]
