"""Health of an embedded executor: does this host have a live member in a consumer group?

The simulator runs its executor in a thread, which serves no HTTP; its health is that the
executor is a member of its group (the broker removes a member that stops heartbeating after
the session timeout). ``perfloop health --group GROUP`` asks the broker for the group's members
and looks for one whose client id is an executor's on this host (``perfloop-executor-<host>-``,
see :func:`perfloop.actions.executor.default_executor_id`), so a shared group does not hide a
dead process.
"""

from __future__ import annotations

from perfloop.actions.executor import default_executor_id
from perfloop.actions.kafka_clients import KafkaAdminClient, KafkaError


def executor_client_prefix() -> str:
    """The client id prefix of the executors of this host (any process id)."""
    return "perfloop-executor-" + default_executor_id().rsplit("-", 1)[0] + "-"


def member_here(bootstrap: str, group: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """(ok, one line): whether ``group`` has a member from this host's executors."""
    prefix = executor_client_prefix()
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
            client_id="perfloop-health",
        )  # fmt: skip
    except KafkaError as exc:
        return False, f"group {group}: broker {bootstrap} did not answer ({exc})"
    try:
        info = admin.describe_groups([group])[group]
    except KafkaError as exc:
        return False, f"group {group}: {exc}"
    finally:
        admin.close()
    members = [m.get("client_id", "") for m in info.get("members", [])]
    mine = [m for m in members if m.startswith(prefix)]
    state = info.get("group_state")
    if mine:
        return True, f"group {group} ({state}): {mine[0]} is a member"
    return False, f"group {group} ({state}): no member {prefix}* among {len(members)}"
