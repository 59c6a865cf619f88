"""A local Apache Kafka broker for development, tests and the demo — no Docker needed.

One KRaft node (broker and controller in one JVM) run from the official jars on Maven
Central. The jars are resolved once by the checked-in ``pom.xml`` into a cache folder
outside the repository; logs, data and the pid file live in a run folder.

    >>> broker = LocalKafka(port=19092, controller_port=19093, run_dir="/tmp/x", cache_dir="/tmp/y")
    >>> broker.bootstrap
    '127.0.0.1:19092'
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J2 = HERE / "log4j2.xml"

JVM_OPTS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


class BrokerError(RuntimeError):
    """The local broker could not be provisioned, started or stopped."""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "perfloop"


def _default_run_dir(port: int) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "perfloop" / f"kafka-{port}"


def kafka_version() -> str:
    """The Kafka version named by the checked-in pom.xml."""
    text = POM.read_text()
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start : text.index("</kafka.version>")]


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them: 16 bytes, URL-safe base64, unpadded.

    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``: the storage tool's
    argument parser would read such an id as an option and refuse to format.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def can_list_topics(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """Whether a real Kafka client can connect to ``bootstrap`` and list its topics."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            client_id="perfloop-readiness",
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    version: str
    run_dir: Path

    def describe(self) -> str:
        if self.running:
            return (
                f"kafka {self.version} is up at {self.bootstrap} (pid {self.pid}, "
                f"run folder {self.run_dir})"
            )
        return (
            f"kafka {self.version} is not running at {self.bootstrap} (run folder {self.run_dir})"
        )


class LocalKafka:
    """One local KRaft broker bound to 127.0.0.1, identified by its run folder."""

    def __init__(
        self,
        port: int = 9092,
        controller_port: int = 9093,
        run_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if port == controller_port:
            raise ValueError(f"controller_port: {controller_port} must differ from port {port}")
        self.port = port
        self.controller_port = controller_port
        self.run_dir = Path(run_dir) if run_dir else _default_run_dir(port)
        self.cache_dir = Path(cache_dir) if cache_dir else _default_cache_dir()

    # -- paths -----------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def lib_dir(self) -> Path:
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:10]
        return self.cache_dir / f"kafka-{kafka_version()}-{digest}" / "lib"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "broker.log"

    @property
    def classpath(self) -> str:
        return str(self.lib_dir / "*")

    # -- provisioning ----------------------------------------------------------------------
    def provision(self) -> Path:
        """Resolve the Kafka jars through Maven into the cache (once) and return the folder."""
        lib = self.lib_dir
        if (lib / ".complete").exists():
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("mvn not found on PATH: Maven is needed to fetch the Kafka jars")
        tmp = lib.with_name("lib.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise BrokerError(f"resolving the Kafka jars with Maven failed:\n{tail}")
        shutil.rmtree(lib, ignore_errors=True)
        tmp.rename(lib)
        (lib / ".complete").write_text(kafka_version())
        return lib

    def _server_properties(self) -> str:
        data = self.run_dir / "data"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "6",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.cleaner.dedupe.buffer.size": "2097152",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "delete.topic.enable": "true",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _format(self, props: Path) -> None:
        if (self.run_dir / "data" / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        cmd = [
            "java", "-cp", self.classpath, f"-Dlog4j2.configurationFile={LOG4J2}",
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
            "--ignore-formatted",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")

    # -- lifecycle -------------------------------------------------------------------------
    def _recorded_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return None
        # the recorded pid counts only while it is still our broker
        if b"kafka.Kafka" in cmdline and str(self.run_dir).encode() in b" ".join(cmdline):
            return pid
        return None

    def status(self) -> BrokerStatus:
        pid = self._recorded_pid()
        running = pid is not None and can_list_topics(self.bootstrap, timeout_s=3)
        return BrokerStatus(running, pid, self.bootstrap, kafka_version(), self.run_dir)

    def up(self, timeout_s: float = 90.0) -> BrokerStatus:
        """Start the broker and wait until a client can list topics; a no-op when it is up."""
        pid = self._recorded_pid()
        if pid is not None:
            if self._wait_ready(pid, timeout_s):
                return self.status()
            raise BrokerError(self._failure(f"broker pid {pid} runs but does not answer"))
        if _port_open("127.0.0.1", self.port) or _port_open("127.0.0.1", self.controller_port):
            raise BrokerError(
                f"port: 127.0.0.1:{self.port} or :{self.controller_port} is already in use by "
                "another process; choose other ports or point PERFLOOP_BROKER at that broker"
            )
        self.provision()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        props = self.run_dir / "server.properties"
        props.write_text(self._server_properties())
        self._format(props)
        cmd = [
            "java", *JVM_OPTS, f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={self.run_dir / 'logs'}",
            "-cp", self.classpath, "kafka.Kafka", str(props),
        ]  # fmt: skip
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.run_dir,
            )  # fmt: skip
        self.pid_file.write_text(str(proc.pid))
        if not self._wait_ready(proc.pid, timeout_s):
            self._stop_pid(proc.pid)
            self.pid_file.unlink(missing_ok=True)
            raise BrokerError(self._failure(f"broker did not become ready in {timeout_s:.0f} s"))
        return self.status()

    def _wait_ready(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return False
            if _port_open("127.0.0.1", self.port) and can_list_topics(self.bootstrap, 3):
                return True
            time.sleep(0.3)
        return False

    def _failure(self, what: str) -> str:
        try:
            tail = self.log_file.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            tail = "(no log)"
        return f"{what}; the last lines of {self.log_file}:\n{tail}"

    def down(self, timeout_s: float = 90.0) -> Literal["clean", "killed"] | None:
        """Stop the broker this run folder started: ``"clean"`` when it shut down within
        ``timeout_s`` of SIGTERM, ``"killed"`` when it took SIGKILL after that, ``None``
        when none was running. A broker holding many partitions needs a while to shut down
        cleanly, and after a kill its next start recovers every log."""
        pid = self._recorded_pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return None
        return "clean" if self._stop_pid(pid, timeout_s) else "killed"

    @staticmethod
    def _stop_pid(pid: int, timeout_s: float = 20.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout_s``; True when SIGTERM was enough."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                _reap(pid)
                return True
            time.sleep(0.2)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        _reap(pid)
        return False

    def java_tool(self, main_class: str, *args: str) -> list[str]:
        """An argv running one of Kafka's own tools (e.g. the console producer)."""
        self.provision()
        return [
            "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={LOG4J2}", "-cp", self.classpath, main_class, *args,
        ]  # fmt: skip


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
