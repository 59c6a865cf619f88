"""Health endpoints: a small HTTP server in a daemon thread, and the check that asks it.

:class:`HealthServer` serves the routes it is given (a path and a function returning a
:class:`Reply`); it knows nothing of what it reports, so other routes can join
``/healthz`` and ``/readyz`` on the same port. :func:`probe_routes` gives those two for a
:class:`Readiness`: ``/healthz`` answers 200 while the process is alive, ``/readyz`` 200 once
the process says it is ready (for the worker and the executor: the broker answered and the
consumer group assigned it its partitions), else 503 with the reason.

>>> readiness = Readiness("joining the group")
>>> routes = probe_routes(readiness)
>>> routes["/readyz"]()
Reply(status=503, body=b'not ready: joining the group\\n', content_type='text/plain; charset=utf-8')
>>> readiness.ready("assigned 3 partitions")
>>> routes["/readyz"]().status, routes["/healthz"]().status
(200, 200)
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, body and its content type."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def text(cls, status: int, line: str) -> Reply:
        return cls(status, (line + "\n").encode())


Route = Callable[[], Reply]


class Readiness:
    """Whether a process is ready, and why (thread-safe: set by its loop, read by the server)."""

    def __init__(self, reason: str) -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._reason = reason

    def ready(self, reason: str) -> None:
        with self._lock:
            self._ready, self._reason = True, reason

    def not_ready(self, reason: str) -> None:
        with self._lock:
            self._ready, self._reason = False, reason

    def state(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, self._reason


def probe_routes(readiness: Readiness) -> dict[str, Route]:
    """``/healthz`` (alive) and ``/readyz`` (200 when ``readiness`` says so, else 503)."""

    def ready() -> Reply:
        ok, reason = readiness.state()
        return (
            Reply.text(200, f"ready: {reason}") if ok else Reply.text(503, f"not ready: {reason}")
        )

    return {"/healthz": lambda: Reply.text(200, "alive"), "/readyz": ready}


class HealthServer:
    """Serve ``routes`` over HTTP on ``host:port`` from a daemon thread (``port`` 0: any free
    port, see :attr:`port`). A route that raises answers 500; an unknown path 404."""

    def __init__(self, port: int, routes: Mapping[str, Route], host: str = "0.0.0.0") -> None:
        self.routes = dict(routes)
        self._server = ThreadingHTTPServer((host, port), _handler_for(self.routes))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="perfloop-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler_for(routes: Mapping[str, Route]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            route = routes.get(self.path.split("?", 1)[0])
            try:
                reply = route() if route else Reply.text(404, f"no route {self.path}")
            except Exception as exc:  # a failing route answers 500, the server goes on
                reply = Reply.text(500, f"error: {type(exc).__name__}: {exc}")
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the process's log

    return Handler


def serve(port: int, routes: Mapping[str, Route], field: str) -> HealthServer | None:
    """Start a :class:`HealthServer` on ``port`` (0: none). A port that cannot be bound is a
    ``ValueError`` naming the configuration ``field``."""
    if port == 0:
        return None
    try:
        return HealthServer(port, routes).start()
    except OSError as exc:
        raise ValueError(
            f"{field}: cannot listen on port {port}: {exc.strerror or exc} "
            "(choose another port, or 0 to turn the health server off)"
        ) from None


def check(
    port: int, ready: bool = False, host: str = "127.0.0.1", timeout_s: float = 3.0
) -> tuple[bool, str]:
    """Ask ``/healthz`` (or ``/readyz`` when ``ready``) on ``host:port``: (ok, one line)."""
    path = "/readyz" if ready else "/healthz"
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        text = response.read().decode(errors="replace").strip()
        return response.status == 200, f"{path} {response.status}: {text}"
    except (OSError, http.client.HTTPException) as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else str(exc)
        return False, f"{path}: no answer from {host}:{port} ({reason})"
    finally:
        conn.close()
