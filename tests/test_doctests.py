"""Every docstring example in perfloop runs, under the module's installed name.

The examples are imported as ``perfloop.schemas.config`` and so on, the names a user sees
(not the source folders' names), so an example that imports a module by another name fails.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names: set[str] = set()
    for package in config["tool"]["setuptools"]["package-dir"]:
        names.add(package)
        root = importlib.import_module(package)
        names.update(m.name for m in pkgutil.walk_packages(root.__path__, f"{package}."))
    return sorted(names)


MODULES = _modules()


def test_every_source_folder_is_a_subpackage_of_perfloop() -> None:
    assert {m.split(".")[1] for m in MODULES if m.count(".") >= 1} >= {
        "schemas",
        "streams",
        "models",
        "actions",
        "simulator",
        "broker",
    }
    assert all(m == "perfloop" or m.startswith("perfloop.") for m in MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__name__ == name
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)


FOLDERS = {"schemas", "streams", "models", "actions", "simulator", "broker"}


def test_nothing_imports_a_source_folder_by_its_bare_name() -> None:
    """An installed perfloop has no top-level ``schemas`` (or ``streams``...): an import of
    one works only from a checkout, so none may be left in the code, the tests or the benches."""
    bare: list[str] = []
    for folder in ("perfloop", "schemas", "streams", "models", "actions", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                bare += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {n}"
                    for n in names
                    if n.split(".")[0] in FOLDERS
                ]
    assert bare == []
