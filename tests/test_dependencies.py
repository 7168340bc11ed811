"""pyproject.toml against the code: every third-party import of the package is a declared
dependency (a lazy one may be an optional extra), every declared runtime dependency is imported
(or listed below with the reason it is needed), and every dependency has a lower bound that the
environment running the tests meets."""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tests.test_imports import MODULES, imports

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# declared runtime dependencies that the package does not import itself, and why they are needed
INDIRECT = {"gguf": "transformers reads the smollm2 preset's GGUF file with it"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(group: str | None = None) -> dict[str, Requirement]:
    project = PYPROJECT["project"]
    reqs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {_norm(r.name): r for r in map(Requirement, reqs)}


def _third_party_imports() -> dict[str, bool]:
    """Distribution -> whether every import of it is inside a function (lazy)."""
    dists = md.packages_distributions()
    out: dict[str, bool] = {}
    for found in imports().values():
        for target, _, in_function, typing_only in found:
            if target in MODULES or target in sys.stdlib_module_names or typing_only:
                continue
            assert target in dists, f"import {target}: no installed distribution provides it"
            for dist in dists[target]:
                out[_norm(dist)] = out.get(_norm(dist), True) and in_function
    return out


def test_every_import_is_declared():
    runtime = _requirements()
    extras = {k for g in PYPROJECT["project"]["optional-dependencies"] for k in _requirements(g)}
    for dist, lazy in _third_party_imports().items():
        if dist in runtime:
            continue
        assert lazy and dist in extras, (
            f"the package imports {dist} but pyproject.toml does not declare it"
            + (
                " (an optional extra needs every import inside a function)"
                if dist in extras
                else ""
            )
        )


def test_every_runtime_dependency_is_imported_or_explained():
    used = _third_party_imports()
    for dist in _requirements():
        assert dist in used or dist in INDIRECT, f"{dist} is declared but never imported"
    for dist in INDIRECT:
        assert dist not in used, f"{dist} is imported now: drop it from INDIRECT"


def test_every_dependency_has_a_lower_bound_that_the_test_environment_meets():
    groups = [None, *PYPROJECT["project"]["optional-dependencies"]]
    for group in groups:
        for dist, req in _requirements(group).items():
            floors = [s.version for s in req.specifier if s.operator == ">="]
            assert floors, f"{req}: give a lower bound (>=)"
            try:
                installed = Version(md.version(dist))
            except md.PackageNotFoundError:
                assert group is not None, f"{dist} is a runtime dependency but is not installed"
                continue
            assert req.specifier.contains(installed, prereleases=True), (
                f"{dist} {installed} is installed but pyproject.toml asks for {req.specifier}"
            )
