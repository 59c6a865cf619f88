"""A worker killed with SIGKILL mid-stream and restarted loses nothing and counts nothing twice.

The recording of ``worker_support`` goes, at 2x its event-time pace, into two fresh sets of
topics: one worker runs through it undisturbed (the reference); the other is killed with
``kill -9`` once its first windows and a window checkpoint are out (the second half of its
stream waits for the kill), restarted with the same group and state folder, and the rest of
the recording follows. Windows may come out twice after the crash, but then with identical
content; the windows and breaches must be those of the reference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from worker_support import (
    THROUGHPUT_TARGET,
    TopicReader,
    WorkerProcess,
    canonical,
    create_topics,
    has_windows,
    produce,
    recording,
    trailing_points,
    wait_committed,
    wait_processed,
    worker_config,
)

from perfloop.schemas.config import PerfloopConfig
from perfloop.streams.kafka.ingest import ingest_group

pytestmark = pytest.mark.broker

SPEED = 2.0
KILL_AFTER_WINDOWS = 15  # of the recording's 72


@dataclass
class Outcome:
    windows: list[dict[str, Any]]
    breaches: list[dict[str, Any]]
    windows_at_kill: int = 0
    restart_log: str = ""


def _feed(broker: str, config: PerfloopConfig, resume: threading.Event | None = None) -> None:
    """Produce the recording at ``SPEED``; with ``resume``, the second half waits for it."""
    rec = recording()
    topic = config.topics.names.metrics
    pace = [t / SPEED for t in rec.sort_ts]
    cut = len(rec.records) // 2 if resume is not None else len(rec.records)
    produce(broker, topic, rec.records[:cut], pace=pace[:cut])
    if resume is not None:
        # however late the kill comes, it comes before the second half of the stream
        resume.wait(120)
        produce(broker, topic, rec.records[cut:], pace=pace[cut:])
    ticks = trailing_points(max(rec.sort_ts), 3, config.windows.lateness_s)
    produce(broker, topic, ticks, partitions=[0, 1, 2])


def _finish(
    broker: str, config: PerfloopConfig, readers: list[TopicReader], killed: bool = False
) -> Outcome:
    rec = recording()
    what = f"the recording's {len(rec.window_ids)} windows ({config.worker.app_id})"
    windows = readers[0].wait_until(has_windows(rec.window_ids), what, 90.0)
    breaches = readers[1].wait_until(
        lambda got: {b["breach_id"] for b in got} >= rec.breach_ids,
        f"breaches {sorted(rec.breach_ids)}",
    )
    if not killed:
        wait_processed(config)  # everything the input produces is out
        for reader in readers:
            reader.read_to_end()
        return Outcome(windows, breaches)
    # The ingest's committed offsets still tell when every window is out, repeats included.
    # The app group's do not after a kill: a record redelivered on restart can stay
    # unacknowledged, so its offset is never committed; repeated breaches get a look instead.
    wait_committed(
        broker, ingest_group(config), config.topics.names.metrics,
        "the restarted ingest to handle every metric record", 60.0,
    )  # fmt: skip
    readers[0].read_to_end()
    readers[1].quiet_for(1.5)
    return Outcome(windows, breaches)


@pytest.fixture(scope="module")
def outcomes(
    broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Outcome, Outcome]]:
    folder: Path = tmp_path_factory.mktemp("crash")
    detection = {"throughput_target_rps": THROUGHPUT_TARGET}
    configs = [worker_config(broker, folder / n, detection=detection) for n in ("ref", "crash")]
    workers = [WorkerProcess(c, folder / n) for c, n in zip(configs, ("ref", "crash"), strict=True)]
    readers = {
        n: [TopicReader(broker, t) for t in (c.topics.names.windows, c.topics.names.breaches)]
        for c, n in zip(configs, ("ref", "crash"), strict=True)
    }
    resume = threading.Event()
    feeders = [
        threading.Thread(target=_feed, args=(broker, configs[0]), daemon=True),
        threading.Thread(target=_feed, args=(broker, configs[1], resume), daemon=True),
    ]
    try:
        for config, worker in zip(configs, workers, strict=True):
            create_topics(config)
            worker.start()
        for worker in workers:
            worker.wait_ready()
        for feeder in feeders:
            feeder.start()
        crash_windows = readers["crash"][0]
        crash_windows.wait_until(
            lambda got: len(got) >= KILL_AFTER_WINDOWS,
            f"{KILL_AFTER_WINDOWS} windows before the kill",
        )
        # the ingest commits a partition only after writing its window checkpoint
        wait_committed(
            broker, ingest_group(configs[1]), configs[1].topics.names.metrics,
            "a window checkpoint to restore after the kill", any_offset=True,
        )  # fmt: skip
        workers[1].kill()
        resume.set()
        at_kill = len(crash_windows.poll())
        workers[1].start()  # same group, same state folder
        workers[1].wait_ready(timeout_s=90.0, partitions=3)
        for feeder in feeders:
            feeder.join(60)
            assert not feeder.is_alive(), "waited 60s for a feed to finish"
        reference = _finish(broker, configs[0], readers["ref"])
        crashed = _finish(broker, configs[1], readers["crash"], killed=True)
        crashed.windows_at_kill = at_kill
        crashed.restart_log = workers[1].log_text()
        yield reference, crashed
    finally:
        resume.set()
        for pair in readers.values():
            for reader in pair:
                reader.close()
        for worker in workers:
            worker.stop()


def test_the_kill_landed_mid_stream(outcomes: tuple[Outcome, Outcome]) -> None:
    _, crashed = outcomes
    total = len(recording().window_ids)
    assert KILL_AFTER_WINDOWS <= crashed.windows_at_kill < total, crashed.windows_at_kill
    assert "window state restored at offset" in crashed.restart_log


def test_after_a_kill_no_window_is_lost_or_counted_twice(outcomes: tuple[Outcome, Outcome]) -> None:
    reference, crashed = outcomes
    got = canonical(crashed.windows, "window_id")
    twice = {k: v for k, v in got.items() if len(v) > 1}
    assert not twice, f"windows that came out again with other content: {sorted(twice)}"
    assert got == canonical(reference.windows, "window_id")


def test_after_a_kill_the_breaches_are_those_of_an_uninterrupted_run(
    outcomes: tuple[Outcome, Outcome],
) -> None:
    reference, crashed = outcomes
    ids = {b["breach_id"] for b in crashed.breaches}
    assert ids == {b["breach_id"] for b in reference.breaches} == recording().breach_ids
    assert canonical(crashed.breaches, "breach_id") == canonical(reference.breaches, "breach_id")
