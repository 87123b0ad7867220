"""`pip install .` (the Docker image) installs every package of the tree: the package list in pyproject.toml is
kept by hand because the design card's top-level folders install under `crownstream.`, so this checks it."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOL = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_of(folder: Path) -> str | None:
    for package, directory in TOOL["package-dir"].items():
        root = REPO / directory
        if folder == root or root in folder.parents:
            return ".".join([package, *folder.relative_to(root).parts])
    return None


def test_every_package_folder_is_installed():
    # Code and data folders alike (templates, migrations, JSON Schemas): each is a package of the wheel.
    folders = {
        p.parent
        for directory in TOOL["package-dir"].values()
        for p in (REPO / directory).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    expected = {_package_of(folder) for folder in folders}
    missing = expected - set(TOOL["packages"])
    assert not missing, (
        f"pyproject.toml [tool.setuptools] packages lacks {sorted(missing)}: `pip install .` would not ship them"
    )
    assert "crownstream.demo" in TOOL["packages"]  # the main job must run from an installed image too
