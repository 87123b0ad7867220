"""The Kafka Streams row: the Maven project in bench/peers/kafka-streams/, built once per hash of its sources
into .state/bench/ (Maven caches its downloads in ~/.m2, so later builds need no network), run as one jar."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from bench.common import BOOTSTRAP, Row
from bench.peers.runner import STATE, run_peer, state_dir
from bench.peers.scoring import KILL_POINTS, TABLE

PROJECT = Path(__file__).with_name("kafka-streams")
# The broker's version (deploy/common.sh): the peer runs the same client as the broker the project runs.
KAFKA_VERSION = os.environ.get("CROWNSTREAM_KAFKA_VERSION", "3.9.1")


def missing_tools() -> str | None:
    """Why the peer cannot be built or run here, or None."""
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (deploy/bootstrap.sh installs Java 17 and Maven)"
    return None


def sources_hash() -> str:
    digest = hashlib.sha256(KAFKA_VERSION.encode())
    for path in sorted(p for p in PROJECT.rglob("*") if p.is_file() and "target" not in p.parts):
        digest.update(str(path.relative_to(PROJECT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def jar() -> Path:
    """The peer's jar, built first if these sources have not been built yet."""
    build = STATE / "kafka-streams-peer" / sources_hash()
    built = build / "kafka-streams-peer.jar"
    if built.exists():
        return built
    problem = missing_tools()
    if problem:
        raise RuntimeError(f"cannot build the Kafka Streams peer: {problem}")
    print(f"  building the Kafka Streams peer into {build} (once) …", flush=True)
    maven = ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(PROJECT / "pom.xml")]
    done = subprocess.run(
        [*maven, f"-Dkafka.version={KAFKA_VERSION}", f"-Dpeer.build.dir={build}", "package"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not built.exists():
        raise RuntimeError(f"mvn package failed for {PROJECT}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return built


async def run(topic: str, count: int, bootstrap: str = BOOTSTRAP, timeout: float = 600) -> Row:
    application_id = f"kstreams-{topic}"
    workdir = state_dir(application_id)
    argv = ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-jar", str(jar())]
    argv += [bootstrap, topic, str(count), str(workdir / "state"), application_id, str(int(timeout))]
    argv += [",".join(map(str, TABLE.points)), str(KILL_POINTS)]
    return await run_peer(
        f"Kafka Streams {KAFKA_VERSION}: team totals (exactly_once_v2, 1 thread)",
        argv,
        count,
        workdir,
        "processor + cached RocksDB store keyed tournament/team; its default 100 ms commit; totals checked",
        timeout + 60,
    )
