"""``perfloop demo`` end to end: every area's incident closes, and nothing is left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker


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


def test_demo_closes_an_incident_in_every_area_and_leaves_nothing_running(broker: str) -> None:
    env_broker = {"PERFLOOP_BROKER": broker}
    proc = subprocess.run(
        [sys.executable, "-m", "perfloop.cli", "demo", "--timeout", "240"],
        capture_output=True, text=True, timeout=420,
        env={**os.environ, **env_broker},
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    closed = re.findall(r"\] \S+\s+(\w+)\s+(RESOLVED|ESCALATED)", out)
    areas = {area for area, _ in closed}
    assert areas == {"memory", "latency", "throughput", "cache", "attribution"}, out
    assert "remedies per resolution" in out and "summary" in out
    logs = re.search(r"logs in (\S+)", out)
    assert logs, out
    assert processes_using(logs.group(1)) == [], "the demo left processes running"
