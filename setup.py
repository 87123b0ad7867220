"""Package discovery for the design card's layout.

The card puts the pipeline's parts in top-level folders (schemas/, streams/, agents/ …); they install as
sub-packages of ``crownstream``, and ``[tool.setuptools.package-dir]`` in pyproject.toml says which folder is which
package. setuptools' automatic discovery cannot gather several folders under one name, so this file runs its finder
on each of them: every folder below them — code, e-mail templates, migrations, JSON Schemas — becomes a package of
the wheel without a list for anyone to keep. Everything else about the project is in pyproject.toml.
"""

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages, setup

PYPROJECT = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]


def discovered_packages() -> list[str]:
    packages = []
    for package, folder in PACKAGE_DIRS.items():
        found = find_namespace_packages(where=folder, exclude=["__pycache__", "*.__pycache__"])
        packages += [package, *(f"{package}.{name}" for name in found)]
    return sorted(packages)


setup(packages=discovered_packages())
