"""Nothing above the engine reaches into it: agents, views, sinks and streams import the engine's facade
(``crownstream.engine``) only, never one of its modules, and no private faust-streaming / aiokafka / mode name.

Read with ``ast``: importing the agents would create the app.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import crownstream.engine as engine

REPO = Path(__file__).resolve().parents[2]
ABOVE_THE_ENGINE = ["agents", "web", "sinks", "streams"]
UPSTREAM = {"faust", "aiokafka", "mode"}
#: The engine's modules, by their old top-level names too (crownstream.transactions …, before crownstream/engine/).
ENGINE_MODULES = {info.name for info in pkgutil.iter_modules(engine.__path__)}
FORMER = {
    "transactions",
    "commit_gate",
    "producer_buffer",
    "seek_epochs",
    "recovery",
    "state_repair",
    "kafka_rebootstrap",
    "topic_declarations",
}


def _imports(tree: ast.Module):
    """(module, name) per imported name; name is None for ``import module``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                yield node.module, alias.name


def _violation(module: str, name: str | None) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["crownstream", "engine"]:
        if len(parts) > 2:
            return f"imports the engine's module {module}: import from crownstream.engine"
        if name in ENGINE_MODULES:
            return f"imports the engine's module crownstream.engine.{name}: import from crownstream.engine"
        if name is not None and name not in engine.__all__:
            return f"imports {name}, which crownstream.engine does not export"
    if parts[0] == "crownstream" and len(parts) > 1 and parts[1] in FORMER:
        return f"imports {module}, an engine module (now crownstream.engine)"
    if parts[0] == "crownstream" and len(parts) == 1 and name in FORMER:
        return f"imports crownstream.{name}, an engine module (now crownstream.engine)"
    if parts[0] in UPSTREAM:
        private = [p for p in parts[1:] if p.startswith("_")]
        if private or (name or "").startswith("_"):
            return f"imports a private upstream name: {module}{'.' + name if name else ''}"
    return None


def test_agents_views_sinks_and_streams_import_only_the_engines_facade():
    found = []
    for folder in ABOVE_THE_ENGINE:
        for path in sorted((REPO / folder).rglob("*.py")):
            for module, name in _imports(ast.parse(path.read_text(), str(path))):
                problem = _violation(module, name)
                if problem:
                    found.append(f"{path.relative_to(REPO)}: {problem}")
    assert not found, "\n".join(found)


def test_the_check_catches_what_it_is_for():
    assert _violation("crownstream.engine.commit_gate", "gate_for")
    assert _violation("crownstream.engine", "commit_gate")
    assert _violation("crownstream.engine", "_STATES")
    assert _violation("crownstream.commit_gate", "gated_events")
    assert _violation("crownstream", "transactions")
    assert _violation("faust.transport.drivers.aiokafka", "_TopicBuffer")
    assert _violation("aiokafka.util", "_private")
    assert _violation("faust._cython", None)
    assert _violation("crownstream.engine", "gated_events") is None
    assert _violation("faust.exceptions", "ProducerSendError") is None
    assert _violation("crownstream.settings", "get_settings") is None
