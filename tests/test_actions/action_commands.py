"""Command builders shared by the executor tests (valid, tampered, forged, expired...)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from perfloop.actions.signing import Keyring, build_command, signature_of
from perfloop.schemas.messages import ActionCommand


def good(keys: Keyring, **overrides: Any) -> ActionCommand:
    """A valid command issued now for a fresh incident."""
    fields: dict[str, Any] = dict(
        incident_id=f"inc-{uuid.uuid4().hex[:8]}", service="api", area="memory", cause="cache",
        remedy="reduce_ttl", params={}, attempt=1, issued_at=time.time(), ttl_s=120.0,
        keys=keys,
    )  # fmt: skip
    fields.update(overrides)
    return build_command(**fields)


def raw(command: ActionCommand) -> bytes:
    return command.model_dump_json().encode()


def resigned(command: ActionCommand, keys: Keyring, **changes: Any) -> bytes:
    """``command`` with ``changes`` applied and a valid signature over them (bypasses the
    catalog checks of ``build_command``, as a buggy or hostile planner might)."""
    data = {**command.model_dump(mode="json"), **changes}
    data["signature"] = signature_of(data, keys.secrets[data["key_id"]])
    return json.dumps(data).encode()


def tampered(command: ActionCommand, **changes: Any) -> bytes:
    """``command`` with ``changes`` applied and the original signature kept."""
    return json.dumps({**command.model_dump(mode="json"), **changes}).encode()
