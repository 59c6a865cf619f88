"""Throughput of the whole worker on the real broker: metrics -> windows -> breaches.

Run ``python bench/bench_pipeline.py`` (``--help`` for sizes; ``PERFLOOP_BROKER`` or
``--broker`` names the broker). For each message form (columnar batches, single points) it
pre-produces a realistic mix - many services, the metrics of all five areas - into fresh
topics, then measures:

- the bare rate: a plain aiokafka consumer reading the same topic (the ceiling);
- the worker rate: ``perfloop worker`` from the moment its ingest holds its partitions (the
  startup before is excluded; the rest of the worker may still be starting) until detection has
  handled its last window, points per second through ingest, windows and detection. The
  ingest detects on each window as it closes and sends the window after its breaches, so
  that is when the last window and the last breach are on the broker. ``stored`` is the rate
  until the last detection state was written too: states are written with the partitions'
  checkpoints, up to ``worker.checkpoint_interval_s`` (1 s) later, and what a run of a few
  seconds measures there is mostly that wait;
- the worker's CPU time per point (user + system, from then until detection is done):
  unlike the rates, it does not count the time the worker waits for a core when other
  processes share the machine (though they still slow each core down);
- the worker's peak RSS (VmHWM, the whole process: interpreter, torch, faust's buffers and the
  window state) and ``RSS/series``: that peak minus the RSS of the same worker when its ingest
  got its partitions (about when it reads its first records), divided by the number of active
  series. It is an upper bound on the state per series: it also holds the fetch and batch
  buffers, whose size does not grow with the number of series;
- the marginal RSS per series: columnar batches of ``--memory-points`` points for two
  service counts (``--memory-services``, default 500 and 2,000: 8,000 and 32,000 series),
  ``--memory-rounds`` windows each (default 8: more than the 6 windows of history that
  detection keeps per service, so the worker is in its steady state); the difference of the
  two peak RSS divided by the difference of the series counts is what one more active series
  costs, free of the fixed buffers. The counts are far apart so that the state outweighs the
  run-to-run noise of transient buffers (several MB).

``--repeat N`` runs every measurement N times on fresh topics and prints medians (with the
range); ``--profile DIR`` runs the worker under cProfile and writes ``DIR/<case>.prof``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perfloop.actions.kafka_clients import (
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from perfloop.schemas.config import PerfloopConfig, TopicNames
from perfloop.schemas.topics import create_missing_topics, topic_catalog
from perfloop.streams.detect_stage import detect_state_topic
from perfloop.streams.kafka.ingest import ingest_group

T0 = 1_760_000_000.0
METRICS = [
    "memory_bytes", "memory_cache_bytes", "memory_model_bytes", "memory_workers_bytes",
    "latency_ms", "latency_processing_ms", "latency_network_ms", "latency_db_ms",
    "throughput_rps", "cpu_util", "cache_hits", "cache_misses", "cache_evictions",
    "attribution_entropy", "attribution_sparsity", "attribution_accuracy",
]  # fmt: skip
RUN_WORKER = (
    "import sys; from perfloop.schemas.config import load_config; "
    "from perfloop.streams.kafka.worker import run_worker; "
    "run_worker(load_config(sys.argv[1]))"
)
PROFILE_WORKER = (
    "import cProfile, sys; from perfloop.schemas.config import load_config; "
    "from perfloop.streams.kafka.worker import run_worker; config = load_config(sys.argv[1]); "
    "cProfile.run('run_worker(config)', sys.argv[2])"
)
ASSIGNED = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\] .*ingest: assigned", re.M)
WATCH_S = 0.05  # how often the bench samples the worker's CPU time
ASK_S = 0.5  # how often it asks the broker whether detection is done
SCALE = {"memory": 2e10, "latency": 120.0, "throughput": 150.0, "cpu": 0.6, "cache": 50.0}


def _scale(metric: str) -> float:
    return SCALE.get(metric.split("_")[0], 0.5)


def messages(
    services: int, rounds: int, per_msg: int, length_s: float
) -> list[tuple[bytes, bytes]]:
    """``rounds`` windows of every (service, metric) series; ``per_msg`` points a message
    (1 = single-point messages), in event-time order."""
    rng = np.random.default_rng(0)
    out: list[tuple[bytes, bytes]] = []
    per_series = max(per_msg, 10)  # points per series per window
    step = length_s / per_series
    for r in range(rounds):
        base = T0 + r * length_s
        ts = np.round(base + step * (np.arange(per_series) + 0.5), 4)
        if per_msg == 1:
            for i in range(per_series):
                for s in range(services):
                    for m in METRICS:
                        v = round(float(rng.lognormal(0, 0.3)) * _scale(m), 3)
                        service = f"svc-{s:04d}"
                        body = {"service": service, "metric": m, "value": v,
                                "ts": float(ts[i])}  # fmt: skip
                        out.append((service.encode(), json.dumps(body).encode()))
        else:
            for s in range(services):
                for m in METRICS:
                    values = np.round(rng.lognormal(0, 0.3, per_series) * _scale(m), 3)
                    service = f"svc-{s:04d}"
                    body = {"service": service, "metric": m, "ts": ts.tolist(),
                            "values": values.tolist()}  # fmt: skip
                    out.append((service.encode(), json.dumps(body).encode()))
    end = T0 + rounds * length_s + length_s  # closes every window
    for p in range(64):
        tick = {"service": f"tick-{p}", "metric": "queue_depth", "value": 0, "ts": end}
        out.append((f"tick-{p}".encode(), json.dumps(tick).encode()))
    return out


def produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                             batch_size=1 << 20, max_request_size=8 << 20, acks=1)  # fmt: skip
    for key, value in values:
        producer.send(topic, key=key, value=value)
    producer.flush(300)
    producer.close()


def bare_rate(bootstrap: str, topic: str, count: int) -> float:
    async def run() -> float:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    max_partition_fetch_bytes=8 << 20)  # fmt: skip
        start = time.perf_counter()  # like the worker's: from connecting to the last record
        await consumer.start()
        got = 0
        try:
            while got < count:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                got += sum(len(b) for b in batches.values())
        finally:
            await consumer.stop()
        return got / (time.perf_counter() - start)

    return asyncio.run(run())


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _toml(data: dict[str, object], prefix: str = "") -> str:
    plain = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
    lines = [f"[{prefix}]"] if prefix and plain else []
    lines += [f"{k} = {json.dumps(v)}" for k, v in plain.items()]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(lines) + "\n"


def _start(config: PerfloopConfig, folder: Path, code: str, *args: str) -> subprocess.Popen[bytes]:
    path = folder / "worker.toml"
    path.write_text(_toml(config.model_dump(exclude_defaults=True)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
    with (folder / "worker.log").open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code, str(path), *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env)  # fmt: skip


def _wait_assigned(proc: subprocess.Popen[bytes], log: Path) -> float:
    """Until the ingest holds its partitions; when it logged that, in epoch seconds. It reads
    them from that moment, whether or not the rest of the worker is ready yet."""
    while True:
        found = ASSIGNED.search(log.read_text(errors="replace"))
        if found is not None:
            stamp = time.mktime(time.strptime(found[1], "%Y-%m-%d %H:%M:%S"))
            return stamp + int(found[2]) / 1000
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.005)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def worker_run(
    config: PerfloopConfig, folder: Path, windows: int, profile: Path | None = None
) -> tuple[float, float, float, int, int]:
    """(seconds from the ingest's assignment until detection had handled every window, and
    until the last detection state was written; CPU seconds until the first; peak RSS; RSS at
    the assignment) of one worker.

    The run is watched without reading its output while it goes on: the bench samples the
    worker's CPU time every ``WATCH_S`` and asks every ``ASK_S`` for the offsets the ingest's
    group has committed on the metrics topic. Reading 2,000 windows as they came cost this
    process over a CPU second in a two-second run, taken from the worker and the broker on a
    small machine. The ingest commits a partition once its windows, breaches and detection
    states are written; once it has committed every record, the times come from record
    timestamps: the last window's or breach's, and the last detection state's. The ingest
    commits about once a second, so the CPU time is the sample taken when detection was
    done, not when the commit was seen."""
    log = folder / "worker.log"
    if profile is None:  # what ``perfloop worker --config path`` runs
        proc = _start(config, folder, RUN_WORKER)
    else:
        proc = _start(config, folder, PROFILE_WORKER, str(profile))
    probe = KafkaConsumer(bootstrap_servers=config.broker.bootstrap, enable_auto_commit=False,
                          group_id=ingest_group(config), consumer_timeout_ms=1000)  # fmt: skip
    try:
        metrics = _partitions(probe, config.topics.names.metrics)
        tps = _partitions(probe, config.topics.names.windows)
        records = sum(probe.end_offsets(metrics).values())
        ready = _wait_assigned(proc, log)
        base_rss = _status(proc.pid, "VmRSS")
        cpu = [(time.time(), _cpu_seconds(proc.pid))]
        deadline = time.monotonic() + 900
        while sum(probe.committed(tp) or 0 for tp in metrics) < records:
            if time.monotonic() > deadline:
                out = sum(probe.end_offsets(tps).values())
                raise RuntimeError(f"waited 900s for detection of {windows} windows ({out} out)")
            for _ in range(round(ASK_S / WATCH_S)):
                time.sleep(WATCH_S)
                cpu.append((time.time(), _cpu_seconds(proc.pid)))
        peak = _status(proc.pid, "VmHWM")
        out = sum(probe.end_offsets(tps).values())
        if out < windows:
            raise RuntimeError(f"the worker closed {out} windows, not {windows}")
        breaches = _partitions(probe, config.topics.names.breaches)
        detected_at = max(_last_timestamps(probe, tps + breaches).values())
        states = _last_timestamps(probe, _partitions(probe, detect_state_topic(config).name))
        stored_at = max(states.values())
        cpu_done = next((c for t, c in cpu if t >= detected_at), cpu[-1][1])
        return detected_at - ready, stored_at - ready, cpu_done - cpu[0][1], peak, base_rss
    finally:
        probe.close()
        _stop(proc)


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def _last_timestamps(consumer: KafkaConsumer, tps: list[TopicPartition]) -> dict[bytes, float]:
    """Per record key of ``tps`` (read from the start to the end offsets), the latest record
    timestamp, in epoch seconds."""
    ends = consumer.end_offsets(tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek_to_beginning(tp)
    latest: dict[bytes, float] = {}
    deadline = time.monotonic() + 120
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited 120s to read {tps[0].topic} up to {ends}")
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                latest[r.key] = max(latest.get(r.key, 0.0), r.timestamp / 1000)
    return latest


def _config(args: argparse.Namespace, folder: Path) -> PerfloopConfig:
    unique = uuid.uuid4().hex[:8]
    return PerfloopConfig.model_validate({
        "broker": {"bootstrap": args.broker},
        "topics": {"names": TopicNames().with_suffix(f".b{unique}").model_dump(),
                   "partitions": args.partitions},
        "windows": {"length_s": 10.0, "lateness_s": 2.0, "idle_timeout_s": 3600.0},
        "worker": {"app_id": f"bench-{unique}", "state_dir": str(folder / "state")},
    })  # fmt: skip


@dataclass
class Run:
    """One measurement of one case."""

    bare: float  # points/s
    worker: float  # points/s until detection had handled every window
    stored: float  # points/s until the last detection state was written
    cpu: float  # worker CPU seconds per point
    peak: int  # bytes
    growth: int  # bytes over the idle worker


def measure(
    args: argparse.Namespace,
    per_msg: int,
    rounds: int,
    profile: Path | None,
    services: int | None = None,
) -> tuple[Run, int, int]:
    """(one run, points, messages) of one case on fresh topics."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    config = _config(args, folder)
    create_missing_topics(args.broker, topic_catalog(config.topics))
    services = services or args.services
    values = messages(services, rounds, per_msg, 10.0)
    points = (len(values) - 64) * per_msg if per_msg > 1 else len(values) - 64
    try:
        produce(args.broker, config.topics.names.metrics, values)
        bare_msgs = bare_rate(args.broker, config.topics.names.metrics, len(values))
        done_s, stored_s, cpu, peak, base = worker_run(config, folder, services * rounds, profile)
    finally:
        delete_topics(args.broker, config)
    bare = bare_msgs * points / len(values)
    run = Run(bare, points / done_s, points / stored_s, cpu / points, peak, peak - base)
    return run, points, len(values)


def delete_topics(bootstrap: str, config: PerfloopConfig) -> None:
    """Delete the topics of one run: its catalog's and those its worker made (named after
    its ``app_id``), so that every run meets a broker holding only its own topics (the broker
    shares the machine, and every topic it holds costs it memory and work)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-cleanup")
    try:
        ours = set(config.topics.names.model_dump().values())
        names = [t for t in admin.list_topics()
                 if t in ours or t.startswith(config.worker.app_id)]  # fmt: skip
        if names:
            admin.delete_topics(names, timeout_ms=30_000)
    finally:
        admin.close()


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=os.environ.get("PERFLOOP_BROKER", "127.0.0.1:9092"))
    parser.add_argument("--services", type=int, default=250)
    parser.add_argument("--columnar-rounds", type=int, default=2, help="10 s windows")
    parser.add_argument("--per-msg", type=int, default=1000, help="points per batch message")
    parser.add_argument("--single-rounds", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; medians printed")
    parser.add_argument("--cases", default="columnar,single", help="comma-separated")
    parser.add_argument("--memory-services", default="500,2000", help="two counts; 0,0: none")
    parser.add_argument("--memory-points", type=int, default=100, help="points per message")
    parser.add_argument("--memory-rounds", type=int, default=8, help="windows per series")
    parser.add_argument("--profile", type=Path, help="cProfile the worker into this folder")
    args = parser.parse_args()
    series = args.services * len(METRICS)
    print(f"{args.services} services x {len(METRICS)} metrics = {series:,} active series; "
          f"10 s windows; {args.partitions} partitions; one worker process; "
          f"medians of {args.repeat} run(s), range in brackets")  # fmt: skip
    cases = {
        "columnar": (f"columnar, {args.per_msg} pts/msg", args.per_msg, args.columnar_rounds),
        "single": ("single point", 1, args.single_rounds),
    }
    rows = {}
    for name in (n.strip() for n in args.cases.split(",") if n.strip()):
        label, per_msg, rounds = cases[name]
        runs = []
        for i in range(args.repeat):
            profile = None
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile / f"{name}-{i}.prof"
            run, points, msgs = measure(args, per_msg, rounds, profile)
            runs.append(run)
        rows[name] = (label, points, msgs, runs)
    low, high = (int(n) for n in args.memory_services.split(","))
    peaks: dict[int, list[int]] = {low: [], high: []}
    for _ in range(args.repeat if args.memory_services != "0,0" else 0):
        for services in (low, high):
            run = measure(args, args.memory_points, args.memory_rounds, None, services)[0]
            peaks[services].append(run.peak)
    print(f"{'case':<26}{'points':>11}{'messages':>10}{'bare pts/s':>12}"
          f"{'worker pts/s':>24}{'ratio':>7}{'stored':>10}{'CPU us/pt':>10}{'peak RSS':>10}"
          f"{'RSS/series':>12}")  # fmt: skip
    for label, points, msgs, runs in rows.values():
        bare = _median([r.bare for r in runs])
        stored = _median([r.stored for r in runs])
        rates = [r.worker for r in runs]
        rate = _median(rates)
        spread = f"[{min(rates) / 1e3:,.0f}k-{max(rates) / 1e3:,.0f}k]" if len(runs) > 1 else ""
        cpu = _median([r.cpu * 1e6 for r in runs])
        peak = _median([r.peak for r in runs])
        per_series = _median([r.growth / series for r in runs])
        line = (f"{label:<26}{points:>11,}{msgs:>10,}{bare:>12,.0f}"
                f"{rate:>11,.0f} {spread:>12}"
                f"{rate / bare:>7.0%}{stored:>10,.0f}{cpu:>10.2f}{peak / 2**20:>8.0f}MB"
                f"{per_series:>10,.0f} B")  # fmt: skip
        print(line)
    if peaks[high]:
        few, many = low * len(METRICS), high * len(METRICS)
        grew = _median([float(p) for p in peaks[high]]) - _median([float(p) for p in peaks[low]])
        print(
            f"marginal RSS per active series ({args.memory_points} pts/msg, "
            f"{args.memory_rounds} windows): peak RSS at "
            f"{many:,} series minus at {few:,} ({grew / 2**20:,.0f} MB), over {many - few:,}: "
            f"{grew / (many - few):,.0f} B"
        )


if __name__ == "__main__":
    main()
