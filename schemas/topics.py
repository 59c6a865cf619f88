"""The topic catalog: every perfloop topic's name, key, partitions and retention, in one place.

All topics are keyed by service and share one partition count, so one service's windows,
incidents, actions and verdicts live on one worker.

>>> [t.name for t in topic_catalog()][:3]
['metrics', 'metrics.dlq', 'perfloop.windows']
>>> topic_catalog()[0].configs()["retention.ms"]
'604800000'
"""

from __future__ import annotations

from dataclasses import dataclass

from perfloop.schemas.config import TopicsConfig

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its role in the loop, its name, and how Kafka keeps it."""

    role: str
    name: str
    message: str
    partitions: int
    replication_factor: int
    retention_ms: int
    compacted: bool = False
    key: str = "service"
    max_message_bytes: int | None = None
    segment_ms: int | None = None

    def configs(self) -> dict[str, str]:
        policy = "compact" if self.compacted else "delete"
        out = {"cleanup.policy": policy, "retention.ms": str(self.retention_ms)}
        if self.max_message_bytes is not None:
            out["max.message.bytes"] = str(self.max_message_bytes)
        if self.segment_ms is not None:
            out["segment.ms"] = str(self.segment_ms)
        return out


#: role -> (message type(s), retention in days, compacted)
_ROLES: dict[str, tuple[str, int, bool]] = {
    "metrics": ("metric_point | metric_batch", 7, False),
    "dlq": ("dead_letter", 14, False),
    "windows": ("window_aggregate", 7, False),
    "breaches": ("breach", 30, False),
    "diagnoses": ("diagnosis", 30, False),
    "actions": ("action_command", 7, False),
    "action_results": ("action_result", 30, False),
    "verifications": ("verification", 30, False),
    "incidents": ("incident_transition", 90, False),
    "labels": ("label", 365, False),
}


def topic_catalog(config: TopicsConfig | None = None) -> list[TopicSpec]:
    """Every perfloop topic with the configured names and partition count."""
    cfg = config or TopicsConfig()
    names = cfg.names.model_dump()
    return [
        TopicSpec(
            role=role,
            name=names[role],
            message=message,
            partitions=cfg.partitions,
            replication_factor=cfg.replication_factor,
            retention_ms=days * DAY_MS,
            compacted=compacted,
        )
        for role, (message, days, compacted) in _ROLES.items()
    ]


# the largest record a worker writes to a compacted topic of its own state (a service's
# detection state, a record of the loop's tables)
MAX_STATE_BYTES = 16 * 1024 * 1024


def state_topic(
    config: TopicsConfig, role: str, name: str, message: str, key: str, max_message_bytes: int
) -> TopicSpec:
    """A worker's own topic of state: compacted, kept forever, partitioned as ``metrics`` (a
    partition's state on the partition's number), with segments rolled every 10 minutes so
    that compaction keeps a restore's read short.

    >>> state_topic(TopicsConfig(), "r", "app.r", "r (binary)", "partition", 1024).configs()
    {'cleanup.policy': 'compact', 'retention.ms': '-1', 'max.message.bytes': '1024', \
'segment.ms': '600000'}
    """
    return TopicSpec(
        role=role,
        name=name,
        message=message,
        partitions=config.partitions,
        replication_factor=config.replication_factor,
        retention_ms=-1,
        compacted=True,
        key=key,
        max_message_bytes=max_message_bytes,
        segment_ms=600_000,
    )


def create_missing_topics(
    bootstrap: str, specs: list[TopicSpec], timeout_s: float = 30.0
) -> list[str]:
    """Create the topics of ``specs`` that do not exist yet; return the names created.

    An existing topic is left as it is, but one with a different partition count is an
    error: keys would no longer map to the same worker.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        client_id="perfloop-topics",
    )
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        for spec in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            spec.partitions,
                            spec.replication_factor,
                            topic_configs=spec.configs(),
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another process: fine
        present = [s for s in specs if s.name in existing]
        if present:
            described = admin.describe_topics([s.name for s in present])
            counts = {d.get("name") or d.get("topic"): len(d["partitions"]) for d in described}
            for spec in present:
                if counts.get(spec.name, spec.partitions) != spec.partitions:
                    raise ValueError(
                        f"partitions: topic {spec.name!r} has {counts[spec.name]} partitions, "
                        f"the catalog says {spec.partitions}"
                    )
        return created
    finally:
        admin.close()
