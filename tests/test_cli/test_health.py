"""The health server, its routes, and ``perfloop health``."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from perfloop.cli import main
from perfloop.health import HealthServer, Readiness, Reply, check, probe_routes, serve


def get(port: int, path: str) -> tuple[int, str, str]:
    """(status, body, content type) of ``GET path`` on the local ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers["Content-Type"]


@pytest.fixture
def readiness() -> Readiness:
    return Readiness("joining the group")


@pytest.fixture
def server(readiness: Readiness) -> Iterator[HealthServer]:
    def broken() -> Reply:
        raise RuntimeError("no registry")

    routes = {
        **probe_routes(readiness),
        "/metrics": lambda: Reply(200, b"up 1\n", "text/plain; version=0.0.4"),
        "/broken": broken,
    }
    running = HealthServer(0, routes, host="127.0.0.1").start()
    yield running
    running.close()


def test_healthz_answers_while_readyz_follows_the_readiness(
    server: HealthServer, readiness: Readiness
) -> None:
    assert get(server.port, "/healthz")[:2] == (200, "alive\n")
    assert get(server.port, "/readyz")[:2] == (503, "not ready: joining the group\n")
    readiness.ready("assigned 3 partitions")
    assert get(server.port, "/readyz")[:2] == (200, "ready: assigned 3 partitions\n")
    readiness.not_ready("rebalancing")
    assert get(server.port, "/readyz")[:2] == (503, "not ready: rebalancing\n")


def test_other_routes_share_the_server_with_their_content_type(server: HealthServer) -> None:
    assert get(server.port, "/metrics") == (200, "up 1\n", "text/plain; version=0.0.4")
    status, body, _ = get(server.port, "/broken")
    assert status == 500 and "RuntimeError: no registry" in body  # and the server goes on
    assert get(server.port, "/nowhere")[0] == 404
    assert get(server.port, "/healthz?verbose=1")[0] == 200


def test_port_zero_serves_nothing_and_a_taken_port_names_the_field() -> None:
    assert serve(0, {}, "worker.http_port") is None
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"executor.http_port: cannot listen on port {port}"):
            serve(port, {}, "executor.http_port")


def test_the_cli_check_exits_by_the_answer(
    server: HealthServer, readiness: Readiness, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(server.port)
    assert main(["health", "--port", port]) == 0
    assert capsys.readouterr().out == "ok: /healthz 200: alive\n"
    assert main(["health", "--port", port, "--ready"]) == 1
    assert capsys.readouterr().out == "failing: /readyz 503: not ready: joining the group\n"
    readiness.ready("assigned 1 partitions")
    assert main(["health", "--port", port, "--ready"]) == 0
    server.close()
    ok, line = check(server.port, ready=True, timeout_s=2)
    assert not ok and line.startswith(f"/readyz: no answer from 127.0.0.1:{port}")
