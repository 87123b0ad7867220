"""Replicated topics (#19): min.insync.replicas on every created topic, and a worker's refusal to start on topics
replicated fewer times than configured. The pure parts; tests/integration/test_topic_replication.py runs them
against the three-broker cluster."""

from __future__ import annotations

import subprocess

import pytest
from pydantic import ValidationError

from crownstream.engine.topic_declarations import with_topic_configs
from crownstream.settings import Settings
from crownstream.streams.admin import (
    TopicLayout,
    TopicReport,
    UnderReplicated,
    check_replication,
    replication_refusal,
    topic_layouts,
    under_replicated,
)
from tests.support.services import REPO


@pytest.mark.parametrize(("replication", "min_isr"), [(1, 1), (2, 1), (3, 2), (5, 2)])
def test_min_insync_replicas_follows_the_replication_factor(replication, min_isr):
    settings = Settings(topic_replication=replication)
    assert settings.min_insync_replicas == min_isr
    assert settings.topic_configs() == {"min.insync.replicas": str(min_isr)}


def test_min_insync_replicas_set_explicitly_wins_and_may_not_exceed_the_factor():
    assert Settings(topic_replication=2, topic_min_insync_replicas=2).min_insync_replicas == 2
    assert Settings(topic_replication=3, topic_min_insync_replicas=1).topic_configs() == {"min.insync.replicas": "1"}
    with pytest.raises(ValidationError, match="every write would be refused"):
        Settings(topic_replication=2, topic_min_insync_replicas=3)


@pytest.mark.parametrize("replication", [1, 2, 3, 4, 5])
def test_the_brokers_min_isr_is_the_settings_rule(tmp_path, replication):
    """deploy/kafka/node.sh derives the brokers' min.insync.replicas (and the transaction log's min ISR) from the
    replication factor by the same rule as the settings."""
    out = subprocess.run(
        ["bash", "-c", f"source deploy/common.sh && source deploy/kafka/node.sh && kafka_min_isr {replication}"],
        cwd=REPO,
        env={"CROWNSTREAM_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == Settings(topic_replication=replication).min_insync_replicas


def test_a_declarations_own_configs_win_over_the_deployments():
    defaults = {"min.insync.replicas": "2"}
    assert with_topic_configs(defaults, None) == {"min.insync.replicas": "2"}
    assert with_topic_configs(defaults, {"cleanup.policy": "compact"}) == {
        "min.insync.replicas": "2",
        "cleanup.policy": "compact",
    }
    assert with_topic_configs(defaults, {"min.insync.replicas": "1"}) == {"min.insync.replicas": "1"}
    assert defaults == {"min.insync.replicas": "2"}, "the defaults are not changed"


def test_under_replicated_names_existing_topics_below_the_factor_only():
    layouts = {
        "b.events": TopicLayout(8, 1),
        "a.changelog": TopicLayout(4, 2),
        "ok": TopicLayout(8, 3),
        "more": TopicLayout(8, 5),
        "not-needed": TopicLayout(1, 1),
    }
    found = under_replicated(layouts, ["b.events", "a.changelog", "ok", "more", "missing"], 3)
    assert found == [UnderReplicated("a.changelog", 2), UnderReplicated("b.events", 1)]
    assert under_replicated(layouts, ["b.events"], 1) == []
    assert under_replicated({}, ["anything"], 3) == [], "a topic to be created is created with the factor"


def test_the_refusal_names_each_topic_and_its_factor():
    message = replication_refusal([UnderReplicated("a.changelog", 2), UnderReplicated("b.events", 1)], 3)
    assert "refusing to start: 2 topics it uses are replicated fewer times than CROWNSTREAM_TOPIC_REPLICATION=3" in (
        message
    )
    assert "  a.changelog: replication factor 2\n" in message
    assert "  b.events: replication factor 1\n" in message
    assert "kafka-reassign-partitions" in message
    assert "1 topic it uses is replicated" in replication_refusal([UnderReplicated("t", 1)], 3)


def test_the_topics_report_says_under_replicated():
    line = TopicReport("t.events", "under_replicated", 8, 8, 1, 3).line()
    assert line.startswith("t.events: replication factor 1, CROWNSTREAM_TOPIC_REPLICATION is 3.")
    assert TopicReport("t.events", "ok", 8, 8, 3, 3).line() == "t.events: ok (8 partitions, replication factor 3)"


class Admin:
    """The two admin requests topic_layouts makes, answered from a list of described topics."""

    def __init__(self, described):
        self.described = described

    async def list_topics(self):
        return [d["topic"] for d in self.described]

    async def describe_topics(self, names):
        return [d for d in self.described if d["topic"] in names]


async def test_a_topics_factor_is_its_least_replicated_partition():
    described = [
        {"topic": "t", "error_code": 0, "partitions": [{"replicas": [1, 2, 3]}, {"replicas": [2, 3]}]},
        {"topic": "u", "error_code": 0, "partitions": [{"replicas": [1]}]},
        {"topic": "gone", "error_code": 3, "partitions": []},
    ]
    assert await topic_layouts(Admin(described)) == {"t": TopicLayout(2, 2), "u": TopicLayout(1, 1)}
    assert await topic_layouts(Admin([])) == {}


async def test_with_a_factor_of_one_nothing_is_asked_of_the_broker():
    # Nothing listens there: a request would fail with BrokerUnavailable.
    assert await check_replication(["t"], Settings(kafka_bootstrap="127.0.0.1:9", topic_replication=1)) == []
