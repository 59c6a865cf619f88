"""Signed optimization commands: building, signing and verifying :class:`ActionCommand`.

The signature is HMAC-SHA256 (hex) over the canonical JSON of the command: every field
except ``signature``, keys sorted, no whitespace, ASCII only. ``PERFLOOP_ACTION_KEY`` holds
the keys: a bare secret (key id ``default``) or ``kid1:secret1,kid2:secret2``, where the
first key signs and every key verifies (rotation). Secrets are at least 16 characters.
``PERFLOOP_ACTION_KEY_FILE`` names a file holding the same text instead (a Docker or
Kubernetes secret); setting both is an error.

>>> keys = Keyring.parse("k2:new-secret-0123456789,k1:old-secret-0123456789")
>>> cmd = build_command(incident_id="inc-1", service="api", area="memory", cause="cache",
...                     remedy="reduce_ttl", params={}, attempt=1,
...                     issued_at=1_700_000_000.0, ttl_s=300.0, keys=keys)
>>> cmd.action_id, cmd.key_id, cmd.params, cmd.expires_at
('inc-1:a1', 'k2', {'factor': 0.5}, 1700000300.0)
>>> verify(cmd, keys, now=1_700_000_100.0) is None
True
>>> verify(cmd.model_copy(update={"params": {"factor": 0.1}}), keys, now=1_700_000_100.0)
'bad signature'
>>> verify(cmd, keys, now=1_700_000_300.0)
'expired at 1700000300 (now 1700000300)'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfloop.actions.catalog import DEVICES, remedy, validate_params
from perfloop.schemas.messages import ActionCommand

ENV_KEY = "PERFLOOP_ACTION_KEY"
ENV_KEY_FILE = "PERFLOOP_ACTION_KEY_FILE"
DEFAULT_KEY_ID = "default"
MIN_SECRET_LENGTH = 16
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Keyring:
    """Secrets by key id; ``signing`` names the key new commands are signed with."""

    signing: str
    secrets: Mapping[str, bytes]

    @classmethod
    def parse(cls, text: str, source: str = ENV_KEY) -> Keyring:
        """Keys from the ``PERFLOOP_ACTION_KEY`` format; ``ValueError`` naming ``source`` and
        the fault."""
        text = text.strip()
        if not text:
            raise ValueError(f"{source}: empty; set a secret or 'kid:secret,...'")
        if ":" not in text and "," not in text:
            pairs = [(DEFAULT_KEY_ID, text)]
        else:
            pairs = []
            for i, item in enumerate(text.split(",")):
                kid, sep, secret = item.strip().partition(":")
                if not sep or not _KID.match(kid):
                    raise ValueError(f"{source}: item {i + 1} is not 'kid:secret' (kid {kid!r})")
                pairs.append((kid, secret))
        secrets: dict[str, bytes] = {}
        for kid, secret in pairs:
            if len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{source}: the secret of key {kid!r} is shorter than "
                    f"{MIN_SECRET_LENGTH} characters"
                )
            if kid in secrets:
                raise ValueError(f"{source}: key id {kid!r} appears twice")
            secrets[kid] = secret.encode()
        return cls(pairs[0][0], secrets)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Keyring:
        """The keys in ``environ[PERFLOOP_ACTION_KEY]`` or in the file named by
        ``PERFLOOP_ACTION_KEY_FILE``; ``ValueError`` if neither or both are set."""
        text, path = environ.get(ENV_KEY), environ.get(ENV_KEY_FILE)
        if text is not None and path is not None:
            raise ValueError(f"{ENV_KEY} and {ENV_KEY_FILE} are both set; set one")
        if path is not None:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ValueError(f"{ENV_KEY_FILE}: cannot read {path!r}: {exc.strerror}") from None
            return cls.parse(text, f"{ENV_KEY_FILE} ({path})")
        if text is None:
            raise ValueError(
                f"{ENV_KEY}: not set (nor {ENV_KEY_FILE}); the action channel needs a signing key"
            )
        return cls.parse(text)

    @staticmethod
    def configured(environ: Mapping[str, str]) -> bool:
        """Whether ``environ`` names signing keys (a key or a key file)."""
        return bool(environ.get(ENV_KEY) or environ.get(ENV_KEY_FILE))

    def __repr__(self) -> str:  # never print secrets
        return f"Keyring(signing={self.signing!r}, key_ids={sorted(self.secrets)!r})"


def canonical_json(command: ActionCommand | Mapping[str, Any]) -> bytes:
    """The bytes that are signed: every field but ``signature``, sorted, compact."""
    data = command.model_dump(mode="json") if isinstance(command, ActionCommand) else command
    body = {k: v for k, v in data.items() if k != "signature"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def signature_of(command: ActionCommand | Mapping[str, Any], secret: bytes) -> str:
    """The hex HMAC-SHA256 of the canonical JSON of ``command``."""
    return hmac.new(secret, canonical_json(command), hashlib.sha256).hexdigest()


def build_command(
    *,
    incident_id: str,
    service: str,
    area: str,
    cause: str,
    remedy: str,
    params: Mapping[str, object],
    attempt: int,
    issued_at: float,
    ttl_s: float,
    keys: Keyring,
    dry_run: bool = False,
    device: str | None = None,
) -> ActionCommand:
    """A signed command with id ``{incident_id}:a{attempt}``, expiring ``ttl_s`` after
    ``issued_at`` (event time). Parameters are validated against the catalog; accelerator
    remedies carry ``device`` (default ``mps``), other remedies none."""
    entry = _catalog_entry(area, cause, remedy)
    if entry.accelerator:
        device = device or DEVICES[0]
        if device not in DEVICES:
            raise ValueError(f"device: {device!r} is not one of {', '.join(DEVICES)}")
    else:
        device = None
    fields: dict[str, Any] = {
        "action_id": f"{incident_id}:a{attempt}",
        "incident_id": incident_id,
        "service": service,
        "area": area,
        "cause": cause,
        "remedy": remedy,
        "params": validate_params(area, cause, remedy, dict(params)),
        "attempt": attempt,
        "issued_at": float(issued_at),
        "expires_at": float(issued_at) + ttl_s,
        "dry_run": dry_run,
        "device": device,
        "key_id": keys.signing,
        "signature": "0" * 64,
    }
    unsigned = ActionCommand.model_validate(fields)  # normalises types before signing
    return unsigned.model_copy(
        update={"signature": signature_of(unsigned, keys.secrets[keys.signing])}
    )


def check_signature(
    command: ActionCommand, keys: Keyring, accepted: tuple[str, ...] = ()
) -> str | None:
    """Why the signature is not acceptable (unknown or refused key id, mismatch), or None.

    ``accepted``, when not empty, further restricts which key ids are honoured.
    """
    secret = keys.secrets.get(command.key_id)
    if secret is None:
        return f"unknown key id {command.key_id!r}"
    if accepted and command.key_id not in accepted:
        return f"key id {command.key_id!r} is not accepted here"
    if not hmac.compare_digest(signature_of(command, secret), command.signature):
        return "bad signature"
    return None


def expiry_reason(command: ActionCommand, now: float) -> str | None:
    """``expired at ...`` if ``now`` is at or past the command's deadline, else None."""
    if now >= command.expires_at:
        return f"expired at {command.expires_at:.0f} (now {now:.0f})"
    return None


def verify(command: ActionCommand, keys: Keyring, now: float) -> str | None:
    """Why ``command`` must not be executed at ``now`` (signature, key, expiry), or None."""
    return check_signature(command, keys) or expiry_reason(command, now)


def _catalog_entry(area: str, cause: str, name: str) -> Any:
    return remedy(area, cause, name)
