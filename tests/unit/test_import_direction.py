"""Imports run one way: the layers below never import the layers above them.

The rules, checked on every import statement of every module (top-level or inside a function, absolute or
relative), read with ``ast`` without importing anything:

1. Nothing under ``agents/``, ``sinks/``, ``streams/``, ``standings/``, ``notifications/`` or ``schemas/``
   imports ``crownstream.web``: the HTTP layer sits on top (its views read the agents' tables; the worker's
   full set of agents and views is ``crownstream.web.all``).
2. Nothing under ``standings/``, ``notifications/`` or ``schemas/`` imports ``crownstream.agents`` or
   ``crownstream.sinks``: the domain (schemas, standings, notification rules) knows nothing of the Faust agents
   that fold it or the sinks that deliver it.
3. Nothing under ``streams/`` (the Kafka edges) imports ``crownstream.agents`` or ``crownstream.sinks``, and
   nothing under ``sinks/`` imports ``crownstream.agents``: the delivery agents drive the sinks, not the reverse.

So the layers are: schemas, standings, notifications, streams < sinks < agents < web.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "agents": ("crownstream.web",),
    "sinks": ("crownstream.web", "crownstream.agents"),
    "streams": ("crownstream.web", "crownstream.agents", "crownstream.sinks"),
    "standings": ("crownstream.web", "crownstream.agents", "crownstream.sinks"),
    "notifications": ("crownstream.web", "crownstream.agents", "crownstream.sinks"),
    "schemas": ("crownstream.web", "crownstream.agents", "crownstream.sinks"),
    # Trace context sits under everything that sends or consumes records: it knows no topic, agent or sink.
    "crownstream/tracing": (
        "crownstream.web",
        "crownstream.agents",
        "crownstream.sinks",
        "crownstream.streams",
        "crownstream.app",
        "crownstream.engine",
    ),
}


def imported_names(path: Path, folder: Path) -> list[tuple[int, str]]:
    """Every module name a file imports, as ``crownstream.…`` (relative imports resolved against its place in
    ``folder``, the source folder of the ``crownstream.<folder name>`` package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_parts = ["crownstream", folder.name, *path.relative_to(folder).with_suffix("").parts]
    if module_parts[-1] == "__init__":
        module_parts.pop()
        here = module_parts
    else:
        here = module_parts[:-1]
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            # ``from crownstream import web`` imports crownstream.web too.
            names += [(node.lineno, prefix)] + [(node.lineno, f"{prefix}.{alias.name}") for alias in node.names]
    return names


def violations(folder: str, root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        for lineno, name in imported_names(path, root / folder):
            for banned in FORBIDDEN[folder]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(root)}:{lineno} imports {name}")
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_upward_imports(folder):
    assert violations(folder) == []


def test_the_checker_sees_every_form_of_import(tmp_path):
    pkg = tmp_path / "standings"
    pkg.mkdir()
    (pkg / "x.py").write_text(
        "import crownstream.web.live\n"
        "from crownstream import agents\n"
        "from ..sinks import db\n"
        "def f():\n    from crownstream.web.routing import partition_for\n"
    )
    assert [v.split(" imports ")[1] for v in violations("standings", tmp_path)] == [
        "crownstream.web.live",
        "crownstream.agents",
        "crownstream.sinks",
        "crownstream.sinks.db",
        "crownstream.web.routing",
        "crownstream.web.routing.partition_for",
    ]
