"""perfloop as a user installs it: the wheel, installed in a fresh virtualenv, works from a
project folder of its own, and ``perfloop demo`` there closes an incident in every area and
leaves nothing running.

The wheel is built from this checkout (``pip wheel --no-deps``); the fresh environment gets
its dependencies from the environment running the tests (a ``.pth`` line after its own
site-packages, so the wheel's perfloop is the one imported). It runs from a folder holding
its own ``schemas.py`` and ``models.py`` (the FastAPI and Django habits), on ``PYTHONPATH``:
a perfloop that imported a generic top-level name would get the user's module instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]
USER_MODULE = "raise ImportError('perfloop imported the project folder\\'s {name}.py')\n"
AREAS = {"memory", "latency", "throughput", "cache", "attribution"}


def run(
    argv: Sequence[str | Path],
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (at most ``timeout_s``), which must succeed."""
    command = [str(a) for a in argv]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s, cwd=cwd, env=env
    )
    assert proc.returncode == 0, f"{' '.join(command)}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", out, ROOT], timeout_s=180)  # fmt: skip
    wheels = list(out.glob("perfloop-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed; its ``bin`` folder."""
    folder = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", folder], timeout_s=60)
    python = folder / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel],
        timeout_s=180)  # fmt: skip
    site = Path(
        run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], 30
        ).stdout.strip()
    )
    # the dependencies: where this environment has them, after the venv's own site-packages
    deps = {sysconfig.get_path("purelib")}
    for name in ("faust", "pydantic", "torch", "river", "kafka", "aiokafka", "numpy"):
        module = __import__(name)
        deps.add(str(Path(module.__file__).resolve().parents[1]))
    (site / "zz_perfloop_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return folder / "bin"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    for name in ("schemas", "models"):
        (folder / f"{name}.py").write_text(USER_MODULE.format(name=name))
    return folder


def user_env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("PERFLOOP_CONFIG", None)
    return {**env, "PYTHONPATH": str(project), **extra}


def test_the_wheel_installs_one_package_with_its_data(wheel: Path) -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        top = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert zf.read(top).decode().split() == ["perfloop"]
    tops = {n.split("/")[0] for n in names} - {top.split("/")[0]}
    assert tops == {"perfloop"}, f"only perfloop/ at the top of site-packages: {tops}"
    for package in config["packages"]:
        folder = package.replace(".", "/") + "/"
        assert any(n.startswith(folder) for n in names), f"{package} is not in the wheel"
    # every module of every source folder, under its installed name
    for package, folder in config["package-dir"].items():
        for source in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            installed = (
                package.replace(".", "/") + "/" + source.relative_to(ROOT / folder).as_posix()
            )
            assert installed in names, f"{source.relative_to(ROOT)} is not in the wheel"
    for scenario in (ROOT / "perfloop" / "scenarios").glob("*.toml"):
        assert f"perfloop/scenarios/{scenario.name}" in names
    assert {"perfloop/broker/pom.xml", "perfloop/broker/log4j2.xml"} <= names


def test_the_installed_cli_runs_from_a_project_of_its_own(
    venv: Path, project: Path, tmp_path: Path
) -> None:
    env = user_env(project)
    where = run([venv / "python", "-c", "import perfloop.cli as c; print(c.__file__)"], 60,
                cwd=project, env=env).stdout.strip()  # fmt: skip
    assert where.startswith(str(venv.parent)), f"perfloop imported from {where}, not the wheel"
    help_text = run([venv / "perfloop", "--help"], 60, cwd=project, env=env).stdout
    for command in ("worker", "executor", "simulate", "demo", "schemas", "health"):
        assert command in help_text
    out = tmp_path / "schemas-out"
    printed = run([venv / "perfloop", "schemas", "export", out], 60, cwd=project, env=env).stdout
    files = [Path(line) for line in printed.split()]
    assert files and all(f.parent == out and f.suffix == ".json" for f in files), printed
    assert sorted(out.iterdir()) == sorted(files)
    assert all("properties" in json.loads(f.read_text()) or "$defs" in json.loads(f.read_text())
               for f in files)  # fmt: skip
    run([venv / "python", "-c", "from perfloop.produce import MetricProducer; MetricProducer"], 60,
        cwd=project, env=env)  # fmt: skip


def processes_using(folder: str) -> list[str]:
    """Command lines of live processes whose environment or arguments mention ``folder``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            env = (proc / "environ").read_bytes()
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if folder.encode() in env or folder.encode() in cmd:
            found.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.timeout(600)
def test_the_installed_demo_closes_an_incident_in_every_area_and_leaves_nothing_running(
    venv: Path, project: Path, broker: str
) -> None:
    proc = subprocess.run(
        [venv / "perfloop", "demo", "--timeout", "240"], capture_output=True, text=True,
        timeout=420, cwd=project, env=user_env(project, PERFLOOP_BROKER=broker),
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    closed = re.findall(r"\] \S+\s+(\w+)\s+(RESOLVED|ESCALATED)", out)
    assert {area for area, _ in closed} == AREAS, out
    assert "remedies per resolution" in out and "summary" in out
    logs = re.search(r"logs in (\S+)", out)
    assert logs, out
    assert processes_using(logs.group(1)) == [], "the demo left processes running"
