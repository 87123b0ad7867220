"""The Grafana dashboard and the Prometheus alert rules in deploy/observability/ only use metrics the workers
export, and together they watch what operators are asked about (issue #18's list)."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import crownstream.metrics  # noqa: F401  (registers every Crownstream metric)

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "observability"
DASHBOARD = ROOT / "grafana-dashboard.json"
ALERTS = ROOT / "alerts.yml"
# Prometheus' own series about each scrape.
PROMETHEUS_SERIES = {"up"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def exported() -> set[str]:
    """Series names a worker's /metrics can carry for Crownstream's metric families."""
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("crownstream_"):
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects (parsed: a syntax error fails the test with the parser's message)."""
    names: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def dashboard_exprs() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_parser_sees_every_selector():
    assert metric_names('sum by (le) (rate(a_bucket[5m])) / on() max(b offset 1h) > 0 or {__name__="c"}') == {
        "a_bucket",
        "b",
        "c",
    }
    with pytest.raises(ValueError):
        metric_names("sum(rate(a[5m])")


def test_every_metric_the_dashboard_uses_is_exported():
    known = exported() | PROMETHEUS_SERIES
    unknown = {(title, name) for title, expr in dashboard_exprs() for name in metric_names(expr) - known}
    assert not unknown, f"dashboard panels query metrics no worker exports: {sorted(unknown)}"


def test_every_metric_the_alerts_use_is_exported():
    known = exported() | PROMETHEUS_SERIES
    unknown = {(rule["alert"], name) for rule in alert_rules() for name in metric_names(rule["expr"]) - known}
    assert not unknown, f"alert rules query metrics no worker exports: {sorted(unknown)}"


def test_a_metric_that_is_not_exported_is_caught():
    known = exported()
    assert "crownstream_consumer_lag" in known and "crownstream_deliveries_total" in known
    assert metric_names("sum(crownstream_consumer_lags)") - known == {"crownstream_consumer_lags"}


def test_alert_rules_are_well_formed():
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules), "alert names repeat"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "warn", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])


# What operators need to see (issue #18): each must be on the dashboard, and the ones marked alerted must alert.
WATCHED = {
    "consumer lag per topic": ("crownstream_consumer_lag", True),
    "records/s per agent": ("crownstream_agent_records_total", True),
    "dead letters by code": ("crownstream_dead_letters_total", True),
    "deliveries by channel and outcome": ("crownstream_deliveries_total", True),
    "retry backlog": ("crownstream_delivery_backlog", True),
    "oldest pending delivery": ("crownstream_delivery_oldest_pending_seconds", True),
    "disabled endpoints": ("crownstream_webhook_endpoints_disabled", True),
    "rebalances and pauses": ("crownstream_rebalance_pause_seconds_bucket", True),
    "table restore time": ("crownstream_table_restore_seconds_bucket", True),
}


@pytest.mark.parametrize("what", sorted(WATCHED))
def test_the_dashboard_and_alerts_watch(what):
    metric, alerted = WATCHED[what]
    assert any(metric in metric_names(expr) for _, expr in dashboard_exprs()), f"no panel shows {what}"
    if alerted:
        assert any(metric in metric_names(rule["expr"]) for rule in alert_rules()), f"no alert on {what}"


def test_the_dashboard_is_importable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
