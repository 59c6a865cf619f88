"""Helpers of the worker tests: a ``perfloop worker`` subprocess, a producer, a topic reader.

Every wait is bounded and its failure message says what it waited for.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka_helpers import at_ends, partitions_of

from perfloop.actions.kafka_clients import KafkaConsumer, KafkaProducer, TopicPartition
from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.schemas.topics import create_missing_topics, topic_catalog
from perfloop.streams.kafka.ingest import ingest_group
from perfloop.toml_out import to_toml

PERFLOOP = str(Path(sys.executable).with_name("perfloop"))
T0 = 1_760_000_000.0  # a fixed event time, so that recordings replay to the same window ids

Record = tuple[bytes | None, bytes]


# -- configuration -------------------------------------------------------------------------


def worker_config(broker: str, state: Path, **sections: dict[str, Any]) -> PerfloopConfig:
    """A configuration with fresh topics and group: 3 partitions, 1 s windows, 0.5 s lateness,
    and an idle timeout long enough never to fire (tests close windows with trailing points).
    ``sections`` are merged over that, one level deep."""
    unique = uuid.uuid4().hex[:10]
    base: dict[str, Any] = {
        "broker": {"bootstrap": broker},
        "topics": {
            "names": TopicNames().with_suffix(f".w{unique}").model_dump(),
            "partitions": 3,
        },
        "windows": {"length_s": 1.0, "lateness_s": 0.5, "idle_timeout_s": 300.0},
        "worker": {
            "app_id": f"perfloop-w{unique}",
            "state_dir": str(state / f"worker-{unique}"),
            "session_timeout_s": 6.0,
            "heartbeat_interval_s": 1.0,
            "http_port": 0,  # tests run several workers at once
        },
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return PerfloopConfig.model_validate(base)


def with_group(config: PerfloopConfig, app_id: str, state_dir: Path) -> PerfloopConfig:
    """``config`` for another worker process: the given consumer group and state folder."""
    worker = config.worker.model_copy(update={"app_id": app_id, "state_dir": str(state_dir)})
    return config.model_copy(update={"worker": worker})


def write_config(config: PerfloopConfig, path: Path) -> Path:
    """Write ``config`` (its non-default values) as the TOML file a worker reads."""
    path.write_text(to_toml(config.model_dump(exclude_defaults=True)))
    return path


def create_topics(config: PerfloopConfig) -> None:
    create_missing_topics(config.broker.bootstrap, topic_catalog(config.topics))


# -- the worker process --------------------------------------------------------------------


_ASSIGNED = re.compile(r"ingest: assigned (\S+) partitions \[([0-9, ]*)\]")


@dataclass
class WorkerProcess:
    """``perfloop worker --config FILE`` as a subprocess, its output in a log file."""

    config: PerfloopConfig
    folder: Path
    name: str = "worker"
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = write_config(self.config, self.folder / f"{self.name}.toml")
        self.starts += 1
        log = self.folder / f"{self.name}-{self.starts}.log"
        self.logs.append(log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [PERFLOOP, "worker", "--config", str(path), "--loglevel", "info"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def log_text(self) -> str:
        return self.logs[-1].read_text(errors="replace") if self.logs else ""

    def assigned(self, topic: str) -> set[int] | None:
        """The partitions of ``topic`` in the ingest's latest assignment (from its log), or
        None before its first assignment."""
        held = [cells for name, cells in _ASSIGNED.findall(self.log_text()) if name == topic]
        if not held:
            return None
        return {int(p) for p in held[-1].split(",") if p.strip()}

    def wait_ready(self, timeout_s: float = 60.0, partitions: int | None = None) -> None:
        """Wait until the worker is ready and (if given) holds ``partitions`` metric
        partitions."""
        deadline = time.monotonic() + timeout_s
        topic = self.config.topics.names.metrics
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, (
                f"{self.name} exited with {self.proc and self.proc.returncode}: "
                f"{self.log_text()[-3000:]}"
            )
            text = self.log_text()
            # Faust logs it once its tables are recovered, or at once with no tables
            ready = "Worker ready" in text
            held = self.assigned(topic)
            if ready and held is not None and (partitions is None or len(held) == partitions):
                return
            time.sleep(0.2)
        raise AssertionError(
            f"waited {timeout_s:g}s for {self.name} to be ready holding {partitions} partitions "
            f"of {topic} (holds {self.assigned(topic)}): {self.log_text()[-3000:]}"
        )

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush, no commit."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def peak_rss_kb(self) -> int | None:
        """The process's peak resident set size (VmHWM) while it runs."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None


# -- producing -----------------------------------------------------------------------------


def point(service: str, metric: str, value: float, ts: float) -> Record:
    """One metric point, keyed by service."""
    body = {"service": service, "metric": metric, "value": value, "ts": round(ts, 6)}
    return service.encode(), json.dumps(body).encode()


def batch(service: str, metric: str, ts: Sequence[float], values: Sequence[float]) -> Record:
    """One columnar batch, keyed by service."""
    body = {"service": service, "metric": metric, "ts": [round(t, 6) for t in ts],
            "values": list(values)}  # fmt: skip
    return service.encode(), json.dumps(body).encode()


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[Record],
    partitions: Sequence[int | None] | None = None,
    pace: Sequence[float] | None = None,
) -> list[tuple[int, int]]:
    """Produce ``records`` in order; return each one's (partition, offset).

    With ``pace`` (an event time per record), record ``i`` is sent no earlier than
    ``pace[i] - pace[0]`` seconds after the first: a replay at 1x.
    """
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    futures = []
    start = time.monotonic()
    try:
        for i, (key, value) in enumerate(records):
            if pace is not None:
                delay = (pace[i] - pace[0]) - (time.monotonic() - start)
                if delay > 0.002:
                    producer.flush(30)
                    time.sleep(delay)
            part = partitions[i] if partitions is not None else None
            futures.append(producer.send(topic, key=key, value=value, partition=part))
        producer.flush(60)
        metas = [f.get(timeout=30) for f in futures]
    finally:
        producer.close()
    return [(m.partition, m.offset) for m in metas]


def trailing_points(last_ts: float, partitions: int, lateness_s: float) -> list[Record]:
    """One point per partition far enough past ``last_ts`` to close every window up to it.

    Services ``tick-<p>`` are sent to partition ``p`` explicitly (see :func:`produce`)."""
    ts = math.floor(last_ts) + 2.0 + lateness_s
    return [point(f"tick-{p}", "queue_depth", 0.0, ts) for p in range(partitions)]


# -- reading -------------------------------------------------------------------------------


class TopicReader:
    """Reads a topic from its beginning, JSON values decoded; waits are bounded."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None, consumer_timeout_ms=200,
        )  # fmt: skip
        self.values: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        for records in self.consumer.poll(timeout_ms=200).values():
            self.values.extend(json.loads(r.value) for r in records)
        return self.values

    def wait_until(
        self, done: Callable[[list[dict[str, Any]]], bool], what: str, timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while not done(self.poll()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout_s:g}s on {self.topic} for {what}; "
                    f"got {len(self.values)} messages: {_short(self.values)}"
                )
        return self.values

    def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """Collect whatever else arrives within ``seconds``: a look for unexpected extras where
        no barrier exists, never a wait for expected messages."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
        return self.values

    def read_to_end(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Read on up to the end offsets the topic has now; return every message read."""
        deadline = time.monotonic() + timeout_s
        parts = partitions_of(self.consumer, self.topic, timeout_s)
        ends = self.consumer.end_offsets(parts)
        while True:
            self.poll()
            if at_ends(self.consumer, ends):
                return self.values
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout_s:g}s to read {self.topic} up to its end offsets "
                    f"{_by_partition(ends)}; got {len(self.values)} messages"
                )

    def close(self) -> None:
        self.consumer.close()


def _by_partition(offsets: dict[TopicPartition, int]) -> dict[int, int]:
    return {tp.partition: offset for tp, offset in sorted(offsets.items())}


def wait_committed(
    bootstrap: str,
    group: str,
    topic: str,
    what: str,
    timeout_s: float = 60.0,
    any_offset: bool = False,
) -> None:
    """Wait until ``group`` has committed every partition of ``topic`` up to the end offsets
    the topic has at the call (it has processed every record on it by then), or with
    ``any_offset`` until it has committed any offset of ``topic`` at all."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )  # never subscribes: it only reads the group's committed offsets
    try:
        deadline = time.monotonic() + timeout_s
        parts = partitions_of(consumer, topic, timeout_s)
        ends = consumer.end_offsets(parts)
        while True:
            done = {tp: consumer.committed(tp) or 0 for tp in parts}
            if any_offset and any(done.values()):
                return
            if not any_offset and all(done[tp] >= ends[tp] for tp in parts):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout_s:g}s for {what}: group {group} has committed "
                    f"{_by_partition(done)} of {topic}, whose end offsets are {_by_partition(ends)}"
                )
            time.sleep(0.2)
    finally:
        consumer.close()


def wait_processed(config: PerfloopConfig, timeout_s: float = 60.0) -> None:
    """Wait until the worker has handled every record produced to ``metrics`` so far.

    The ingest commits a partition only once the windows, breaches and dead letters of its
    records are on the broker: when its group has committed up to the end offsets, everything
    the input produces on those topics is on the broker."""
    wait_committed(
        config.broker.bootstrap, ingest_group(config), config.topics.names.metrics,
        "the ingest to handle every metric record (windows, breaches and dead letters sent)",
        timeout_s,
    )  # fmt: skip


def _short(values: list[dict[str, Any]]) -> str:
    text = json.dumps(values[-20:])
    return text if len(text) < 3000 else text[:3000] + "..."


def window_ids(windows: Iterable[dict[str, Any]], skip_prefix: str = "tick-") -> set[str]:
    return {w["window_id"] for w in windows if not w["service"].startswith(skip_prefix)}


def has_windows(expected: set[str]) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda got: expected <= {w["window_id"] for w in got}


# -- a recording ---------------------------------------------------------------------------

RECORDING_WINDOWS = 12
THROUGHPUT_TARGET = 100.0  # set as detection.throughput_target_rps with the recording


@dataclass
class Recording:
    """Produced input: records in order with the event time that orders them, and the
    breaches it must cause (with ``detection.throughput_target_rps = THROUGHPUT_TARGET``)."""

    records: list[Record]
    sort_ts: list[float]
    breach_ids: set[str]
    window_ids: set[str]

    def split(self, fraction: float) -> tuple[list[Record], list[Record]]:
        cut = int(len(self.records) * fraction)
        return self.records[:cut], self.records[cut:]


def recording(services: int = 6, seed: int = 11) -> Recording:
    """~12 s of event time from ``services`` services in all five areas, single points and
    columnar batches mixed, one malformed and one late record; services 1-5 each breach once.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    rows: list[tuple[float, Record]] = []

    def spread(w: int, n: int) -> list[float]:
        return [T0 + w + (i + 0.5) / n for i in range(n)]

    for w in range(RECORDING_WINDOWS):
        for s in range(services):
            name = f"api-{s}"
            high_latency = s == 1 and 3 <= w <= 8
            lat = rng.uniform(600, 900, 20) if high_latency else rng.uniform(20, 200, 20)
            for t, v in zip(spread(w, 20), np.round(lat, 3).tolist(), strict=True):
                rows.append((t, point(name, "latency_ms", v, t)))
            for t in spread(w, 5):
                rows.append(
                    (t, point(name, "latency_db_ms", round(float(rng.uniform(1, 9)), 3), t))
                )
            top = 34e9 if s == 2 and w >= 5 else 20e9
            mem = np.round(rng.uniform(10e9, 20e9, 5), 0).tolist()
            mem[2] = top
            for t, v in zip(spread(w, 5), mem, strict=True):
                rows.append((t, point(name, "memory_bytes", v, t)))
            ts = spread(w, 10)
            hit = 0.7 if s == 3 and w >= 2 else 0.95
            rows.append((ts[-1], batch(name, "cache_hits", ts, [10 * hit] * 10)))
            rows.append((ts[-1], batch(name, "cache_misses", ts, [round(10 * (1 - hit), 6)] * 10)))
            rps = 50.0 if s == 5 and w >= 7 else 150.0
            tp = np.round(rng.normal(rps, 5, 5), 3).tolist()
            rows.append((ts[-1], batch(name, "throughput_rps", spread(w, 5), tp)))
            entropy = 0.9 if s == 4 and w >= 6 else 0.5
            for t in spread(w, 2):
                rows.append((t, point(name, "attribution_entropy", entropy, t)))
    malformed = b'{"service":"api-0","metric":"latency_ms","value":"x","ts":1}'
    rows.append((T0 + 4.0, (b"api-0", malformed)))
    rows.append((T0 + 6.0, point("api-0", "latency_ms", 1.0, T0 + 1.1)))  # late
    rows.sort(key=lambda r: r[0])
    breaches = {
        f"api-1:latency:{round((T0 + 3) * 1000)}",
        f"api-2:memory:{round((T0 + 5) * 1000)}",
        f"api-3:cache:{round((T0 + 2) * 1000)}",
        f"api-4:attribution:{round((T0 + 6) * 1000)}",
        f"api-5:throughput:{round((T0 + 7) * 1000)}",
    }
    windows = {
        f"api-{s}:{round((T0 + w) * 1000)}"
        for s in range(services)
        for w in range(RECORDING_WINDOWS)
    }
    return Recording([r[1] for r in rows], [r[0] for r in rows], breaches, windows)


def canonical(messages: Iterable[dict[str, Any]], key: str) -> dict[str, list[str]]:
    """``key`` -> every distinct content seen under it, as canonical JSON (``tick-`` services
    left out)."""
    out: dict[str, set[str]] = {}
    for m in messages:
        if str(m.get("service", "")).startswith("tick-"):
            continue
        out.setdefault(m[key], set()).add(json.dumps(m, sort_keys=True))
    return {k: sorted(v) for k, v in sorted(out.items())}
