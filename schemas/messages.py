"""pydantic models of every message on every perfloop topic.

Every message carries ``schema_version``; numbers are finite, names bounded, and area, cause
and remedy names must come from :mod:`perfloop.schemas.vocabulary`.

>>> MetricPoint(service="checkout", metric="latency_ms", value=12.5, ts=1_700_000_000).value
12.5
>>> MetricPoint(service="checkout", metric="memory_bytes", value=-1, ts=1_700_000_000)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for MetricPoint
value
  Value error, value: -1.0 is negative, but metric 'memory_bytes' cannot be negative ...
...
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from perfloop.schemas.fields import (
    AreaName,
    Finite,
    IncidentState,
    Labels,
    Name,
    Number,
    ParamValue,
    Probability,
    ResultStatus,
    Text,
    Timestamp,
    Verdict,
)
from perfloop.schemas.vocabulary import causes_of, non_negative_metrics, remedies_of

SCHEMA_VERSION: Final = 1
MAX_BATCH_POINTS = 100_000


class Message(BaseModel):
    """Common base: strict about unknown fields, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("schema_version", mode="before")
    @classmethod
    def _exact_version(cls, value: Any) -> Any:
        if type(value) is not int:
            raise ValueError(f"schema_version: {value!r} must be the integer 1")
        return value


def _check_cause(area: str, cause: str) -> None:
    if cause not in causes_of(area):
        raise ValueError(
            f"cause: {cause!r} is not a cause of area {area!r}; known: {', '.join(causes_of(area))}"
        )


def _non_negative(metric: str, value: float) -> None:
    if metric in non_negative_metrics() and value < 0:
        raise ValueError(f"value: {value!r} is negative, but metric {metric!r} cannot be negative")


class MetricPoint(Message):
    """One observation of one metric of one service at event time ``ts`` (epoch seconds)."""

    service: Name
    metric: Name
    value: Finite
    ts: Timestamp
    labels: Labels = Field(default_factory=dict)

    @field_validator("value")
    @classmethod
    def _value_sign(cls, value: float, info: Any) -> float:
        _non_negative(info.data.get("metric", ""), value)
        return value


class MetricBatch(Message):
    """One series' observations as columns: ``ts[i]`` is the event time of ``values[i]``."""

    service: Name
    metric: Name
    labels: Labels = Field(default_factory=dict)
    ts: Annotated[list[Timestamp], Field(min_length=1, max_length=MAX_BATCH_POINTS)]
    values: Annotated[list[Finite], Field(min_length=1, max_length=MAX_BATCH_POINTS)]

    @model_validator(mode="after")
    def _columns(self) -> MetricBatch:
        if len(self.ts) != len(self.values):
            raise ValueError(
                f"values: length {len(self.values)} differs from ts length {len(self.ts)}"
            )
        if self.metric in non_negative_metrics():
            for value in self.values:
                _non_negative(self.metric, value)
        return self


class DeadLetter(Message):
    """Input that failed validation (or came too late), with the original bytes."""

    kind: Literal["invalid", "late"]
    reason: Text
    field: Annotated[str, StringConstraints(max_length=256)] | None = None
    source_topic: Name
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key_b64: str | None = None
    value_b64: str
    rejected_at: Finite
    points: int = Field(1, ge=0)


_Model = TypeVar("_Model", bound=BaseModel)
_new, _set = object.__new__, object.__setattr__


@cache
def _plain_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model``, which must keep nothing but its fields (see :func:`unchecked`)."""
    if (
        model.__private_attributes__
        or model.__pydantic_post_init__
        or model.__pydantic_root_model__
        or model.model_config.get("extra") == "allow"
    ):
        raise TypeError(f"{model.__name__} keeps more than its fields")
    return frozenset(model.model_fields)


def unchecked(model: type[_Model], fields: dict[str, Any]) -> _Model:
    """A ``model`` holding ``fields`` as they are, without validating them: only for values
    that hold the schema by construction, such as the aggregates the window stage computes
    from points it validated (its tests compare such windows with validated ones).
    ``fields`` names every field of ``model`` and nothing else; the model keeps it.

    It sets what ``model.model_construct(**fields)`` sets, without that method's loop over
    every field for aliases and defaults, which costs more than validating does.

    >>> s = unchecked(SeriesAggregate, {"metric": "m", "labels": {}, "count": 1, "sum": 2.0,
    ...     "min": 2.0, "max": 2.0, "mean": 2.0, "last": 2.0, "p50": 2.0, "p95": 2.0,
    ...     "p99": 2.0, "sample": [2.0]})
    >>> s == SeriesAggregate.model_validate(s.model_dump())
    True
    """
    obj = _new(model)
    _set(obj, "__dict__", fields)
    _set(obj, "__pydantic_fields_set__", set(_plain_fields(model)))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class SeriesAggregate(BaseModel):
    """The aggregates of one (metric, labels) series over one window."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: Name
    labels: Labels = Field(default_factory=dict)
    count: int = Field(ge=1)
    sum: Number
    min: Number
    max: Number
    mean: Number
    last: Number
    p50: Number
    p95: Number
    p99: Number
    sample: Annotated[list[Number], Field(max_length=4096)] = Field(default_factory=list)


class WindowAggregate(Message):
    """One closed event-time window of one service, with every series seen in it."""

    window_id: Name
    service: Name
    start: Finite
    end: Finite
    series: Annotated[list[SeriesAggregate], Field(max_length=10_000)]

    def get(self, metric: str, labels: dict[str, str] | None = None) -> SeriesAggregate | None:
        """The series for ``metric`` (unlabelled unless ``labels`` is given), if present."""
        if not labels:
            return self._unlabelled().get(metric)
        for s in self.series:
            if s.metric == metric and s.labels == labels:
                return s
        return None

    def _unlabelled(self) -> dict[str, SeriesAggregate]:
        """Each metric's unlabelled series (the first, should a window hold two), found once:
        the models read a window's metrics by name many times. Kept with the series it was
        built from, as a copy with other series keeps what it copied."""
        held = self.__dict__.get("_by_metric")
        if held is not None and held[0] is self.series:
            return held[1]
        found: dict[str, SeriesAggregate] = {}
        for s in self.series:
            if not s.labels:
                found.setdefault(s.metric, s)
        self.__dict__["_by_metric"] = (self.series, found)
        return found


class Breach(Message):
    """A threshold crossed by a service in one area, for ``windows`` windows in a row."""

    breach_id: Name
    service: Name
    area: AreaName
    signal: Name
    observed: Finite
    threshold: Finite
    direction: Literal["above", "below"]
    window_start: Finite
    window_end: Finite
    first_window_start: Finite
    windows: int = Field(ge=1)


class FeatureAttribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    value: Finite
    attribution: Finite


class Diagnosis(Message):
    """The cause a model gives a breach, with its probabilities and explanation."""

    diagnosis_id: Name
    breach_id: Name
    incident_id: Name | None = None
    service: Name
    area: AreaName
    cause: Name
    probabilities: dict[Name, Probability]
    decider: Literal["prior", "river", "torch", "ensemble"]
    top_features: Annotated[list[FeatureAttribution], Field(max_length=50)]
    attribution_entropy: Finite
    attribution_sparsity: Finite
    prequential_accuracy: Probability | None = None
    labels_seen: int = Field(0, ge=0)
    features: dict[Name, Finite] = Field(default_factory=dict)
    window_end: Finite

    @model_validator(mode="after")
    def _causes(self) -> Diagnosis:
        _check_cause(self.area, self.cause)
        unknown = set(self.probabilities) - set(causes_of(self.area))
        if unknown:
            raise ValueError(f"probabilities: unknown causes {sorted(unknown)} for {self.area!r}")
        return self


class ActionCommand(Message):
    """A signed optimization command for executors (see ``perfloop.actions.signing``)."""

    action_id: Name
    incident_id: Name
    service: Name
    area: AreaName
    cause: Name
    remedy: Name
    params: Annotated[dict[Name, ParamValue], Field(max_length=32)] = Field(default_factory=dict)
    attempt: int = Field(ge=1, le=1000)
    issued_at: Timestamp
    expires_at: Timestamp
    dry_run: bool = False
    device: Annotated[str, StringConstraints(max_length=32)] | None = None
    key_id: Name
    signature: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

    @model_validator(mode="after")
    def _remedy(self) -> ActionCommand:
        _check_cause(self.area, self.cause)
        if self.remedy not in remedies_of(self.area, self.cause):
            raise ValueError(
                f"remedy: {self.remedy!r} is not a remedy for {self.area}/{self.cause}"
            )
        if self.expires_at <= self.issued_at:
            raise ValueError(f"expires_at: {self.expires_at} is not after issued_at")
        return self


class ActionResult(Message):
    """What an executor did with a command."""

    action_id: Name
    incident_id: Name | None = None
    service: Name | None = None
    status: ResultStatus
    detail: Text = ""
    handler: Name | None = None
    executor: Name | None = None
    duration_ms: Annotated[float, Field(ge=0)] = 0.0
    ts: Finite


class SampleSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int = Field(ge=0)
    median: Finite | None = None
    mean: Finite | None = None
    p95: Finite | None = None
    stat: Finite | None = None


class Verification(Message):
    """The verdict on one applied remedy: post-action windows against the baseline."""

    verification_id: Name
    incident_id: Name
    action_id: Name
    service: Name
    area: AreaName
    verdict: Verdict
    baseline: SampleSummary
    post: SampleSummary
    statistic: Finite | None = None
    p_value: Probability | None = None
    effect_size: Finite | None = None
    clear_condition_met: bool = False
    window_end: Finite


class IncidentTransition(Message):
    """One state change of an incident: the audit trail of what perfloop did and why."""

    incident_id: Name
    seq: int = Field(ge=0)
    service: Name
    area: AreaName
    from_state: IncidentState | None
    to_state: IncidentState
    reason: Text
    attempt: int = Field(0, ge=0)
    ts: Finite
    detail: dict[str, Any] = Field(default_factory=dict)


class Label(Message):
    """A confirmed cause for an incident, used as a training label."""

    incident_id: Name
    service: Name
    area: AreaName
    cause: Name
    source: Literal["verification", "person"] = "person"
    ts: Finite

    @model_validator(mode="after")
    def _cause(self) -> Label:
        _check_cause(self.area, self.cause)
        return self


#: topic role -> the message model(s) it carries.
MESSAGE_TYPES: dict[str, type[Message]] = {
    "metric_point": MetricPoint,
    "metric_batch": MetricBatch,
    "dead_letter": DeadLetter,
    "window_aggregate": WindowAggregate,
    "breach": Breach,
    "diagnosis": Diagnosis,
    "action_command": ActionCommand,
    "action_result": ActionResult,
    "verification": Verification,
    "incident_transition": IncidentTransition,
    "label": Label,
}
