"""`pip install .` (the Docker image) ships every package of the tree, found by discovery (setup.py), and building
the project prints no setuptools warning. Builds the real wheel: what is checked is what an image would hold."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
# pip's own notes when it builds without byte-compiling; not setuptools complaining about the project.
HARMLESS = ("byte-compiling is disabled",)


def _installed_name(path: Path) -> str:
    for package, directory in PACKAGE_DIRS.items():
        root = REPO / directory
        if root in path.parents:
            return "/".join([*package.split("."), *path.relative_to(root).parts])
    raise AssertionError(f"{path} is in no package folder")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[set[str], str]:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = out.glob("crownstream-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist()), build.stdout + build.stderr


def test_every_file_of_every_package_folder_is_in_the_wheel(built):
    names, _ = built
    # Code and data alike (templates, migrations, JSON Schemas): a folder nobody listed still ships.
    expected = {
        _installed_name(p)
        for directory in PACKAGE_DIRS.values()
        for p in (REPO / directory).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    missing = expected - names
    assert not missing, f"`pip install .` would not ship {sorted(missing)}; see setup.py's discovery"
    assert "crownstream/demo/__main__.py" in names  # the main job runs from an installed image too


def test_building_prints_no_setuptools_warning(built):
    _, log = built
    warnings = [
        line.strip()
        for line in log.splitlines()
        if "warning" in line.lower() and not any(harmless in line for harmless in HARMLESS)
    ]
    assert not warnings, "building the wheel warned:\n" + "\n".join(warnings)
