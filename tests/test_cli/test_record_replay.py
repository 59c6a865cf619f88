"""``perfloop record`` and ``perfloop replay`` on the real broker, and the recording format."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka_helpers import create_topic, read_records

from perfloop.actions.kafka_clients import KafkaProducer
from perfloop.recording import (
    RecordedMessage,
    RecordingError,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
    encode_message,
)
from perfloop.replay import ReplayOptions, replay_file

T0_MS = int(time.time() * 1000) - 3_600_000  # an hour ago: inside every topic's retention


def perfloop(broker: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PERFLOOP_BROKER": broker}
    return subprocess.run(
        [sys.executable, "-m", "perfloop.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def by_partition(records: list[Any]) -> dict[int, list[tuple[Any, ...]]]:
    out: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.partition].append((r.key, r.value, list(r.headers), r.timestamp))
    return dict(out)


def write_recording(path: Path, topic: str, messages: list[tuple[int, bytes]]) -> Path:
    """A recording of ``(timestamp_ms, value)`` messages on partition 0 of ``topic``."""
    header = RecordingHeader([topic], {topic: 1}, "earliest", "2025-01-01T00:00:00Z")
    with RecordingWriter(path, header) as writer:
        for offset, (ts, value) in enumerate(messages):
            writer.write(RecordedMessage(topic, 0, offset, ts, 0, b"k", value, []))
    return path


def recorded_so_far(path: Path) -> int:
    """How many messages the synced part of a recording still being written holds."""
    try:
        with RecordingReader(path) as reader:
            return sum(1 for _, m in reader if isinstance(m, RecordedMessage))
    except (OSError, RecordingError):  # not created yet, or no header synced yet
        return 0


def wait_for_recorded(path: Path, count: int, timeout_s: float) -> int:
    """Wait until the synced part of ``path`` holds ``count`` messages; return how many."""
    deadline = time.monotonic() + timeout_s
    found = recorded_so_far(path)
    while found < count and time.monotonic() < deadline:
        time.sleep(0.2)
        found = recorded_so_far(path)
    return found


# -- the format, without a broker ----------------------------------------------------------


def test_a_truncated_or_corrupt_recording_names_the_line(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.jsonl.gz", "m", [(T0_MS + i, b"v") for i in range(50)])
    data = path.read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with RecordingReader(tmp_path / "cut.gz") as reader:
        items = list(reader)
    assert isinstance(items[-1][1], RecordingError) and "truncated" in str(items[-1][1])

    plain = tmp_path / "plain.jsonl"
    header = RecordingHeader(["m"], {"m": 1}, "earliest", "x").to_json()
    ok = encode_message(RecordedMessage("m", 0, 0, T0_MS, 0, None, b"\x00\xff", [("h", b"")]))
    plain.write_text(f'{header}\n{ok}\n{{"topic":"m","partition":-1}}\n')
    with RecordingReader(plain) as reader:
        (n1, first), (n2, second) = list(reader)
    assert n1 == 2 and isinstance(first, RecordedMessage) and first.value == b"\x00\xff"
    assert n2 == 3 and str(second).startswith("line 3: partition:")

    (tmp_path / "no-header.jsonl").write_text(ok + "\n")
    with pytest.raises(RecordingError, match="line 1: not a perfloop-recording header"):
        RecordingReader(tmp_path / "no-header.jsonl")


# -- on the broker -------------------------------------------------------------------------


@pytest.mark.broker
def test_record_then_replay_round_trips_into_a_renamed_topic(
    broker: str, unique: str, tmp_path: Path
) -> None:
    source = create_topic(broker, f"rec.src.{unique}", 3)
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    sent = 0
    for i in range(90):
        key = None if i % 10 == 9 else f"svc-{i % 4}".encode()
        value: bytes | None = json.dumps({"i": i, "ts": T0_MS / 1000 + i}).encode()
        if i == 42:
            value = b"\x00\xff binary \xfe"
        if i == 43:
            value = None  # a tombstone keeps its key
        headers = [("trace", f"t{i}".encode()), ("raw", b"\xff\x00")] if i % 3 == 0 else []
        producer.send(
            source, key=key, value=value, headers=headers, partition=i % 3,
            timestamp_ms=T0_MS + 37 * i,
        )  # fmt: skip
        sent += 1
    producer.flush(20)
    producer.close()

    recording = tmp_path / "rec.jsonl.gz"
    done = perfloop(broker, "record", source, "-o", str(recording), "--until-end", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "stopped by end" in done.stdout
    with gzip.open(recording, "rt") as lines:
        header = json.loads(next(lines))
        assert sum(1 for _ in lines) == sent
    assert header["format"] == "perfloop-recording" and header["version"] == 1
    assert header["topics"] == [source] and header["partitions"] == {source: 3}
    assert header["start"] == "earliest" and header["created_at"].endswith("Z")

    target = f"rec.dst.{unique}"
    done = perfloop(
        broker, "replay", str(recording), "--map", f"{source}={target}", "--speed", "max",
        "--create-topics", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"sent {sent} messages" in done.stdout

    original = by_partition(read_records(broker, source, sent))
    replayed = by_partition(read_records(broker, target, sent))
    assert replayed == original


@pytest.mark.broker
def test_record_from_a_time_and_stop_on_sigterm(broker: str, unique: str, tmp_path: Path) -> None:
    topic = create_topic(broker, f"rec.time.{unique}", 2)
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    for i in range(10):
        producer.send(topic, value=b"%d" % i, partition=i % 2, timestamp_ms=T0_MS + 1000 * i)
    producer.flush(20)
    producer.close()

    out = tmp_path / "from.jsonl.gz"
    since = str((T0_MS + 6000) / 1000)
    done = perfloop(broker, "record", topic, "-o", str(out), "--from", since, "--until-end")
    assert done.returncode == 0, done.stderr
    with RecordingReader(out) as reader:
        values = sorted(m.value for _, m in reader if isinstance(m, RecordedMessage))
    assert values == [b"6", b"7", b"8", b"9"]

    out = tmp_path / "signal.jsonl.gz"
    env = {**os.environ, "PERFLOOP_BROKER": broker}
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfloop.cli", "record", topic, "-o", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    # the recorder syncs its file every few seconds: signal once all 10 are readable in it
    recorded = wait_for_recorded(out, 10, timeout_s=30.0)
    assert recorded == 10, f"waited 30 s for 10 messages in {out.name}, found {recorded}"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "stopped by signal" in stdout
    with RecordingReader(out) as reader:  # a complete gzip stream: no truncation error
        assert [type(m) for _, m in reader] == [RecordedMessage] * 10


@pytest.mark.broker
def test_replay_paces_by_recorded_time(broker: str, unique: str, tmp_path: Path) -> None:
    topic = create_topic(broker, f"rep.pace.{unique}", 1)
    span_s = 3.0
    paced = write_recording(
        tmp_path / "pace.jsonl.gz", "m", [(T0_MS + 100 * i, b"%d" % i) for i in range(31)]
    )
    # 100 s between messages: paced at any speed up to 100x, this would take over 30 s
    sparse = write_recording(
        tmp_path / "sparse.jsonl.gz", "m", [(T0_MS + 100_000 * i, b"%d" % i) for i in range(31)]
    )
    options = {"topic_map": {"m": topic}}
    at_10 = replay_file(broker, paced, ReplayOptions(speed=10, **options))
    at_max = replay_file(broker, sparse, ReplayOptions(speed=None, **options))
    assert at_10.messages == at_max.messages == 31
    # paced (not faster than a tenth of the span) and well ahead of real time; the upper
    # bound leaves room for a loaded machine
    assert 0.09 * span_s <= at_10.elapsed_s <= 0.5 * span_s, at_10.describe()
    assert at_max.elapsed_s < 30, at_max.describe()
    read_records(broker, topic, 62)


@pytest.mark.broker
def test_corrupt_lines_are_skipped_or_fail_the_run(
    broker: str, unique: str, tmp_path: Path
) -> None:
    topic = create_topic(broker, f"rep.bad.{unique}", 1)
    header = RecordingHeader(["m"], {"m": 1}, "earliest", "x").to_json()
    good = [
        encode_message(RecordedMessage("m", 0, i, T0_MS + i, 0, b"k", b"%d" % i, []))
        for i in range(3)
    ]
    bad_b64 = '{"topic":"m","partition":0,"offset":9,"timestamp":1,"timestamp_type":0,'
    bad_b64 += '"key":null,"value":{"b64":"!!"},"headers":[]}'
    lines = [header, good[0], good[1], "{not json", good[2], bad_b64]
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")

    failed = perfloop(broker, "replay", str(path), "--map", f"m={topic}", "--speed", "max")
    assert failed.returncode == 2
    assert "line 4: not JSON" in failed.stderr, failed.stderr

    skipped = perfloop(
        broker, "replay", str(path), "--map", f"m={topic}", "--speed", "max",
        "--on-error", "skip", "--quiet",
    )  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    assert "line 4: not JSON" in skipped.stderr and "line 6: value: bad base64" in skipped.stderr
    assert "sent 3 messages" in skipped.stdout and "2 corrupt lines skipped" in skipped.stdout
    # the failed run sent the two messages before line 4, the skipping run all three
    assert [r.value for r in read_records(broker, topic, 5)] == [b"0", b"1", b"0", b"1", b"2"]


@pytest.mark.broker
def test_shift_moves_timestamps_and_shift_values_moves_metric_times(
    broker: str, unique: str, tmp_path: Path
) -> None:
    topic = create_topic(broker, f"rep.shift.{unique}", 1)
    t0 = T0_MS / 1000
    point = json.dumps({"service": "api", "metric": "latency_ms", "value": 5.0, "ts": t0})
    batch = json.dumps({"service": "api", "metric": "m", "ts": [t0, t0 + 1], "values": [1, 2]})
    other = b'{"note": "no ts here"}'
    path = write_recording(
        tmp_path / "shift.jsonl.gz", "m",
        [(T0_MS, point.encode()), (T0_MS + 1000, batch.encode()), (T0_MS + 2000, other)],
    )  # fmt: skip
    done = perfloop(
        broker, "replay", str(path), "--map", f"m={topic}", "--speed", "max",
        "--shift", "3600", "--shift-values", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = read_records(broker, topic, 3)
    assert [r.timestamp for r in records] == [T0_MS + 3_600_000 + d for d in (0, 1000, 2000)]
    assert json.loads(records[0].value)["ts"] == t0 + 3600
    assert json.loads(records[1].value)["ts"] == [t0 + 3600, t0 + 3601]
    assert records[2].value == other

    before = time.time()
    now = replay_file(
        broker, path, ReplayOptions(topic_map={"m": topic}, speed=None, shift_to_now=True)
    )
    (first, *_) = read_records(broker, topic, 6)[3:]
    assert abs(first.timestamp / 1000 - before) < 10, now.describe()
    assert json.loads(first.value)["ts"] == t0  # values move only with --shift-values
