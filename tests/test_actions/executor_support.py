"""Helpers of the executor tests: a result reader, a local webhook, the argv probe."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kafka_helpers import partitions_of

from perfloop.actions.kafka_clients import KafkaConsumer

SECRET = "test-secret-0123456789abcdef"
PROBE = str(Path(__file__).with_name("argv_probe.py"))


class ResultReader:
    """Reads the results topic from the beginning; every wait is bounded and says what for."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None, consumer_timeout_ms=200,
        )  # fmt: skip
        self.topic = topic
        self.results: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.results) < count and time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=200).values():
                for record in records:
                    self.results.append(json.loads(record.value))
                    self.keys.append(record.key)
        assert len(self.results) >= count, (
            f"waited {timeout_s:g}s for {count} results on {self.topic}, "
            f"got {len(self.results)}: {self.results}"
        )
        return self.results

    def on_topic(self, timeout_s: float = 15.0) -> int:
        """How many results the topic holds now (from its offsets, not from reading it)."""
        parts = partitions_of(self.consumer, self.topic, timeout_s)
        ends = self.consumer.end_offsets(parts)
        starts = self.consumer.beginning_offsets(parts)
        return sum(ends[tp] - starts[tp] for tp in parts)

    def by_id(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for result in self.results:
            out.setdefault(result["action_id"], []).append(result["status"])
        return out


class Hook:
    """A local webhook that records each POST and answers with the next queued status."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.calls: list[dict[str, object]] = []
        self.statuses = list(statuses or [])
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls.append({"body": json.loads(body), "path": self.path,
                                   "action": self.headers["X-Perfloop-Action-Id"]})  # fmt: skip
                self.send_response(hook.statuses.pop(0) if hook.statuses else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/perfloop"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
