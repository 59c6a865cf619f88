"""Type-check perfloop under the names it installs with.

The source folders ``schemas/``, ``streams/``, ``models/`` and ``actions/`` install as
``perfloop.schemas``, ... (``[tool.setuptools.package-dir]`` in ``pyproject.toml``), a mapping
mypy cannot read. This builds that package as a tree of links under ``build/typecheck``
(``mypy_path`` there), runs mypy on ``-p perfloop``, then on any further paths given (e.g.
``bench``), and prints mypy's report with the links turned back into source paths.

Run ``python tools/typecheck.py [PATH ...]``; the exit status is mypy's.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def package_dirs() -> dict[str, Path]:
    """Each installed package's source folder, from ``pyproject.toml``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def build_tree() -> dict[Path, Path]:
    """The tree of links; returns each link's path and the source folder it stands for."""
    top = TREE / "perfloop"
    if top.exists():
        for link in top.iterdir():
            link.unlink()
    top.mkdir(parents=True, exist_ok=True)
    dirs = package_dirs()
    links: dict[Path, Path] = {}
    for entry in dirs.pop("perfloop").iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
            links[top / entry.name] = entry
    for name, folder in dirs.items():
        link = TREE.joinpath(*name.split("."))
        link.symlink_to(folder, target_is_directory=True)
        links[link] = folder
    return links


def main(argv: list[str]) -> int:
    links = build_tree()
    runs = [["-p", "perfloop"]] + ([argv] if argv else [])  # mypy takes packages or paths
    results = [
        subprocess.run(
            [sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True
        )
        for args in runs
    ]
    report = "".join(r.stdout + r.stderr for r in results)
    for link, source in sorted(links.items(), key=lambda kv: -len(str(kv[0]))):
        report = report.replace(str(link.relative_to(ROOT)), str(source.relative_to(ROOT)))
    print(report, end="")
    return max(r.returncode for r in results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
