"""Replaying a recording gives the same windows and breaches at any speed and on any number of
workers.

One recording (12 s of event time, six services, all five areas, points and batches, one
malformed and one late record) is produced into three fresh sets of topics at once:

- ``paced``: at 1x, paced by event time, one worker;
- ``fast``: as fast as possible, one worker;
- ``group``: as fast as possible, two workers in one consumer group.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from worker_support import (
    THROUGHPUT_TARGET,
    Recording,
    TopicReader,
    WorkerProcess,
    canonical,
    create_topics,
    has_windows,
    produce,
    recording,
    trailing_points,
    wait_processed,
    with_group,
    worker_config,
)

from perfloop.schemas.config import PerfloopConfig

pytestmark = pytest.mark.broker


@dataclass
class Run:
    config: PerfloopConfig
    workers: list[WorkerProcess]
    windows: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    assigned: list[set[int]] = field(default_factory=list)


def _feed(broker: str, run: Run, rec: Recording, paced: bool) -> None:
    topic = run.config.topics.names.metrics
    produce(broker, topic, rec.records, pace=rec.sort_ts if paced else None)
    ticks = trailing_points(max(rec.sort_ts), 3, run.config.windows.lateness_s)
    produce(broker, topic, ticks, partitions=[0, 1, 2])


def _collect(broker: str, run: Run, rec: Recording, timeout_s: float) -> None:
    names = run.config.topics.names
    readers = [TopicReader(broker, t) for t in (names.windows, names.breaches, names.dlq)]
    try:
        what = f"the recording's {len(rec.window_ids)} windows ({run.config.worker.app_id})"
        run.windows = readers[0].wait_until(has_windows(rec.window_ids), what, timeout_s)
        run.breaches = readers[1].wait_until(
            lambda got: {b["breach_id"] for b in got} >= rec.breach_ids,
            f"breaches {sorted(rec.breach_ids)}",
        )
        run.dead = readers[2].wait_until(lambda got: len(got) >= 2, "2 dead letters")
        wait_processed(run.config)  # anything else the input produces is out by now
        for reader in readers:
            reader.read_to_end()
    finally:
        for reader in readers:
            reader.close()


@pytest.fixture(scope="module")
def runs(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    folder: Path = tmp_path_factory.mktemp("replay")
    rec = recording()
    detection = {"throughput_target_rps": THROUGHPUT_TARGET}
    out: dict[str, Run] = {}
    for name in ("paced", "fast", "group"):
        config = worker_config(broker, folder / name, detection=detection)
        create_topics(config)
        workers = [WorkerProcess(config, folder / name)]
        if name == "group":
            second = with_group(config, config.worker.app_id, folder / name / "second")
            workers.append(WorkerProcess(second, folder / name, name="worker-2"))
        out[name] = Run(config, workers)
    try:
        for run in out.values():
            for worker in run.workers:
                worker.start()
        for run in out.values():
            for worker in run.workers:
                worker.wait_ready()
        group = out["group"]
        _wait_split(group.workers, group.config.topics.names.metrics, 3)
        group.assigned = [w.assigned(group.config.topics.names.metrics) for w in group.workers]
        paced = threading.Thread(target=_feed, args=(broker, out["paced"], rec, True))
        paced.start()
        _feed(broker, out["fast"], rec, paced=False)
        _feed(broker, out["group"], rec, paced=False)
        _collect(broker, out["fast"], rec, 60.0)
        _collect(broker, out["group"], rec, 60.0)
        paced.join(60)
        assert not paced.is_alive(), "waited 60s for the paced feed to finish"
        _collect(broker, out["paced"], rec, 30.0)
        yield out
    finally:
        for run in out.values():
            for worker in run.workers:
                worker.stop()


def _wait_split(workers: list[WorkerProcess], topic: str, partitions: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = [w.assigned(topic) for w in workers]
        if (
            all(held)
            and sum(map(len, held)) == partitions
            and set().union(*held) == set(range(partitions))
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"waited 60s for {len(workers)} workers to split {topic}: {held}")


def test_the_recording_breaches_what_it_should(runs: dict[str, Run]) -> None:
    expected = recording().breach_ids
    for name, run in runs.items():
        assert {b["breach_id"] for b in run.breaches} == expected, name
        assert len(run.breaches) == len(expected), f"{name}: a breach came twice"


def test_replay_at_1x_and_at_full_speed_gives_identical_windows_and_breaches(
    runs: dict[str, Run],
) -> None:
    paced, fast = runs["paced"], runs["fast"]
    windows = canonical(paced.windows, "window_id")
    assert all(len(v) == 1 for v in windows.values()), "a window came out twice, differently"
    assert windows == canonical(fast.windows, "window_id")
    assert any(s["sample"] for w in paced.windows for s in w["series"])  # samples compared too
    assert canonical(paced.breaches, "breach_id") == canonical(fast.breaches, "breach_id")
    assert _dead(paced) == _dead(fast)


def test_two_workers_in_one_group_split_the_partitions_and_agree_with_one(
    runs: dict[str, Run],
) -> None:
    group, fast = runs["group"], runs["fast"]
    first, second = group.assigned
    assert first and second and not first & second, group.assigned
    assert canonical(group.windows, "window_id") == canonical(fast.windows, "window_id")
    assert canonical(group.breaches, "breach_id") == canonical(fast.breaches, "breach_id")
    assert _dead(group) == _dead(fast)


def _dead(run: Run) -> list[tuple[str, str, int, int, str]]:
    """The distinct dead letters without their wall-clock time (they are at-least-once)."""
    return sorted(
        {(d["kind"], d["reason"], d["partition"], d["offset"], d["value_b64"]) for d in run.dead}
    )
