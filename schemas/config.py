"""perfloop's configuration: one TOML file validated by pydantic, overridable by environment.

Every default from the flowcharts is written here once. ``load_config`` reads the file named
by ``PERFLOOP_CONFIG`` (if any), then applies environment overrides:

- ``PERFLOOP_BROKER`` sets ``broker.bootstrap``;
- ``PERFLOOP_SECTION__FIELD[__FIELD...]=value`` sets any field, e.g.
  ``PERFLOOP_WINDOWS__LENGTH_S=5`` or ``PERFLOOP_PLANNER__DRY_RUN=true`` (values are read as
  JSON when they parse, else as text).

>>> cfg = PerfloopConfig()
>>> cfg.detection.memory.fire
33600000000.0
>>> cfg.detection.for_service("checkout").latency.fire
500.0
>>> PerfloopConfig.model_validate({"windows": {"length_s": -1}})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for PerfloopConfig
windows.length_s
  Input should be greater than 0 [type=greater_than, input_value=-1, input_type=int]
...
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GB = 1_000_000_000


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Section):
    bootstrap: str = "127.0.0.1:9092"


class TopicNames(_Section):
    """The topic names; change them to run several perfloops on one cluster (or in tests)."""

    metrics: str = "metrics"
    dlq: str = "metrics.dlq"
    windows: str = "perfloop.windows"
    breaches: str = "perfloop.breaches"
    diagnoses: str = "perfloop.diagnoses"
    actions: str = "actions"
    action_results: str = "action-results"
    verifications: str = "perfloop.verifications"
    incidents: str = "perfloop.incidents"
    labels: str = "perfloop.labels"

    def with_suffix(self, suffix: str) -> TopicNames:
        """The same names with ``suffix`` appended (for isolated test runs)."""
        return TopicNames(**{k: f"{v}{suffix}" for k, v in self.model_dump().items()})


class TopicsConfig(_Section):
    names: TopicNames = TopicNames()
    partitions: int = Field(6, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=16)


class IngestConfig(_Section):
    """Limits for metric input; anything outside goes to the dead-letter topic. Names and
    labels can be held tighter than the window messages allow, not looser: a window is built
    from them without checking them again."""

    min_ts: float = 946_684_800.0  # 2000-01-01T00:00:00Z
    max_future_s: float = Field(3600.0, ge=0)
    max_name_length: int = Field(128, ge=1, le=128)
    max_labels: int = Field(16, ge=0, le=16)
    max_label_length: int = Field(128, ge=1, le=128)
    max_batch_points: int = Field(100_000, ge=1)


class WindowsConfig(_Section):
    length_s: float = Field(10.0, gt=0)
    lateness_s: float = Field(2.0, ge=0)
    idle_timeout_s: float = Field(30.0, gt=0)
    sketch_alpha: float = Field(0.01, gt=0, lt=1)
    sample_size: int = Field(64, ge=0, le=4096)
    history_windows: int = Field(6, ge=1, le=100)


class ThresholdRule(_Section):
    """Fire when the value is beyond ``fire`` for ``for_windows`` windows in a row; clear when
    it is back beyond ``clear`` for ``clear_windows`` windows (hysteresis)."""

    direction: Literal["above", "below"]
    fire: float
    clear: float
    for_windows: int = Field(2, ge=1, le=100)
    clear_windows: int = Field(2, ge=1, le=100)

    @model_validator(mode="after")
    def _hysteresis(self) -> ThresholdRule:
        if self.direction == "above" and self.clear > self.fire:
            raise ValueError(
                f"clear: {self.clear} must not be above fire {self.fire} for an 'above' rule"
            )
        if self.direction == "below" and self.clear < self.fire:
            raise ValueError(
                f"clear: {self.clear} must not be below fire {self.fire} for a 'below' rule"
            )
        return self


def _rule(direction: Literal["above", "below"], fire: float, clear: float) -> Any:
    return Field(default_factory=lambda: ThresholdRule(direction=direction, fire=fire, clear=clear))


class DetectionConfig(_Section):
    """Thresholds of the five flowcharts. Throughput's rule is a ratio to the target rate.
    ``rules`` holds the rules of areas added by plugins, by rule name (their defaults come
    with the area)."""

    memory: ThresholdRule = _rule("above", 33.6 * GB, 32.0 * GB)
    latency: ThresholdRule = _rule("above", 500.0, 450.0)
    throughput: ThresholdRule = _rule("below", 1.0, 1.05)
    throughput_target_rps: float | None = Field(None, gt=0)
    cache: ThresholdRule = _rule("below", 0.80, 0.85)
    cache_min_requests: float = Field(1.0, ge=0)
    attribution_entropy: ThresholdRule = _rule("above", 0.85, 0.80)
    attribution_sparsity: ThresholdRule = _rule("below", 0.20, 0.25)
    attribution_accuracy: ThresholdRule = _rule("below", 0.80, 0.83)
    rules: dict[str, ThresholdRule] = Field(default_factory=dict)
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def rule(self, name: str, default: ThresholdRule | None = None) -> ThresholdRule:
        """The rule called ``name``: a field of this section (``latency``, ...), else an entry
        of ``rules``, else ``default``; ``ValueError`` naming it when there is none."""
        found = getattr(self, name, None) if name in DetectionConfig.model_fields else None
        if isinstance(found, ThresholdRule):
            return found
        found = self.rules.get(name, default)
        if found is None:
            raise ValueError(f"detection: no rule {name!r}; set [detection.rules.{name}]")
        return found

    def for_service(self, service: str) -> DetectionConfig:
        """This configuration with ``services[service]``'s overrides applied."""
        override = self.services.get(service)
        if not override:
            return self
        merged = _deep_merge(self.model_dump(exclude={"services"}), override)
        return DetectionConfig.model_validate(merged)


class DiagnosisConfig(_Section):
    min_labels: int = Field(20, ge=0)
    accuracy_window: int = Field(200, ge=1)
    top_features: int = Field(5, ge=1, le=50)
    seed: int = 0


class PlannerConfig(_Section):
    """Limits of the planner (see ``perfloop.actions.planner``); all times are event-time seconds.

    ``max_per_service_per_hour`` and ``max_global_per_minute`` are the circuit breaker: past
    them the planner escalates instead of acting. ``prior_strength`` is the weight of the
    flowchart order in the remedy bandit; ``exploration`` is ``thompson`` (sample the
    posteriors) or ``mean`` (rank by posterior mean). ``device`` is sent with accelerator
    remedies.
    """

    max_attempts: int = Field(default=6, ge=1, le=45)
    cooldown_s: float = Field(default=30.0, ge=0)
    max_per_service_per_hour: int = Field(default=10, ge=1)
    max_global_per_minute: int = Field(default=30, ge=1)
    dry_run: bool = False
    command_ttl_s: float = Field(default=300.0, gt=0)
    seed: int = 0
    prior_strength: float = Field(default=2.0, gt=0, le=1000)
    exploration: Literal["thompson", "mean"] = "thompson"
    device: Literal["mps", "cuda", "xpu", "cpu"] = "mps"


class VerificationConfig(_Section):
    """How the loop judges a remedy (see ``perfloop.streams.verify``). ``retained_windows``: how
    much event time of each service's windows the loop keeps, in window lengths behind its newest
    window, for baselines and post-action windows; a replay gives the live verdicts while
    breaches, diagnoses and results reach the loop less than that far behind the windows."""

    settle_windows: int = Field(1, ge=0, le=100)
    post_windows: int = Field(3, ge=1, le=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    min_effect: float = Field(0.10, ge=0, lt=1)
    min_observations: int = Field(8, ge=2)
    result_deadline_windows: int = Field(30, ge=1)
    retained_windows: int = Field(60, ge=8, le=100_000)


class ExecutorConfig(_Section):
    """The executor service (see ``perfloop.actions.executor``).

    ``handlers`` maps ``area/cause/remedy``, ``remedy``, ``area/cause`` or ``area`` (most
    specific first) to a handler name; anything unmapped goes to ``default_handler``. Built-in
    handlers are ``log``, ``webhook`` and ``command``; others come from the
    ``perfloop.handlers`` entry-point group. ``webhook`` holds ``url`` and optionally
    ``timeout_s``, ``retries``, ``backoff_s`` and ``headers``. ``commands`` maps a remedy name
    (or ``default``) to an argv template whose placeholders are whole items such as
    ``{remedy}`` or ``{param:factor}``. ``accepted_key_ids``, when not empty, restricts the
    signing keys honoured. ``executor_id`` names this executor in results (default: host and
    process id). ``group_instance_id`` turns on Kafka static membership: an executor restarted
    with the same id takes its partitions back at once instead of after the session timeout.
    ``http_port`` serves ``/healthz`` and ``/readyz`` when the executor runs as its own process
    (``perfloop executor``; 0 turns it off).
    """

    group: str = "perfloop-executor"
    state_dir: str = ".perfloop/executor"
    default_handler: str = "log"
    handlers: dict[str, str] = Field(default_factory=dict)
    handler_timeout_s: float = Field(default=30.0, gt=0)
    accepted_key_ids: tuple[str, ...] = ()
    webhook: dict[str, Any] = Field(default_factory=dict)
    commands: dict[str, list[str]] = Field(default_factory=dict)
    executor_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:/@-]{1,128}$")
    poll_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    send_timeout_s: float = Field(default=30.0, gt=0)
    group_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    session_timeout_ms: int = Field(default=45_000, ge=1_000, le=1_800_000)
    http_port: int = Field(default=8001, ge=0, le=65_535)


class WorkerConfig(_Section):
    """The worker: its consumer groups (``app_id``), state folder and group timing.

    A worker that dies is replaced in the groups after ``session_timeout_s``.

    ``checkpoint_interval_s`` (default 1 s) is how often the window state of a busy partition
    is written to the compacted topic ``<app_id>.window-checkpoints``; offsets are committed
    only once a checkpoint covers them. A crash replays at most about that much input; a
    longer interval costs less per point but replays more after a crash.

    ``http_port`` serves ``/healthz`` and ``/readyz`` (0 turns it off)."""

    app_id: str = "perfloop"
    state_dir: str = ".perfloop/worker"
    session_timeout_s: float = Field(default=10.0, ge=1.0, le=300.0)
    heartbeat_interval_s: float = Field(default=3.0, gt=0, le=60.0)
    checkpoint_interval_s: float = Field(default=1.0, gt=0, le=60.0)
    http_port: int = Field(default=8000, ge=0, le=65_535)


class PerfloopConfig(_Section):
    """The whole configuration; every section has the flowcharts' defaults."""

    broker: BrokerConfig = BrokerConfig()
    topics: TopicsConfig = TopicsConfig()
    ingest: IngestConfig = IngestConfig()
    windows: WindowsConfig = WindowsConfig()
    detection: DetectionConfig = DetectionConfig()
    diagnosis: DiagnosisConfig = DiagnosisConfig()
    planner: PlannerConfig = PlannerConfig()
    verification: VerificationConfig = VerificationConfig()
    executor: ExecutorConfig = ExecutorConfig()
    worker: WorkerConfig = WorkerConfig()


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The configuration overrides found in ``environ`` (see the module docstring)."""
    out: dict[str, Any] = {}
    if environ.get("PERFLOOP_BROKER"):
        out["broker"] = {"bootstrap": environ["PERFLOOP_BROKER"]}
    for name, text in environ.items():
        if not name.startswith("PERFLOOP_") or "__" not in name:
            continue
        path = name[len("PERFLOOP_") :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _env_value(text)
    return out


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> PerfloopConfig:
    """Read the TOML file (``path`` or ``PERFLOOP_CONFIG``) and apply environment overrides."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    chosen = path or env.get("PERFLOOP_CONFIG")
    if chosen:
        file = Path(chosen)
        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ValueError(f"PERFLOOP_CONFIG: no such file {str(file)!r}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"PERFLOOP_CONFIG: {str(file)!r} is not valid TOML: {exc}") from None
    return PerfloopConfig.model_validate(_deep_merge(data, env_overrides(env)))
