"""Signed commands: canonical form, tamper detection, key rotation, expiry."""

from __future__ import annotations

import json

import pytest

from perfloop.actions.params import ParamError
from perfloop.actions.signing import (
    Keyring,
    build_command,
    canonical_json,
    check_signature,
    signature_of,
    verify,
)
from perfloop.schemas.messages import ActionCommand

T0 = 1_700_000_000.0
OLD = "old:old-secret-0123456789"
NEW = "new:new-secret-0123456789"


def command(keys: Keyring, **overrides: object) -> ActionCommand:
    fields: dict[str, object] = dict(
        incident_id="inc-1", service="api", area="memory", cause="cache", remedy="reduce_ttl",
        params={"factor": 0.25}, attempt=2, issued_at=T0, ttl_s=300.0, keys=keys,
    )  # fmt: skip
    fields.update(overrides)
    return build_command(**fields)  # type: ignore[arg-type]


def test_command_fields_are_deterministic() -> None:
    keys = Keyring.parse("a-bare-secret-0123456789")
    cmd = command(keys)
    assert cmd.action_id == "inc-1:a2"
    assert cmd.key_id == "default"
    assert (cmd.issued_at, cmd.expires_at) == (T0, T0 + 300)
    assert cmd == command(keys)  # same inputs, same signature
    assert verify(cmd, keys, now=T0) is None


def test_canonical_json_is_sorted_compact_and_excludes_the_signature() -> None:
    cmd = command(Keyring.parse("a-bare-secret-0123456789"))
    text = canonical_json(cmd).decode()
    assert " " not in text and "signature" not in text
    assert list(json.loads(text)) == sorted(json.loads(text))


@pytest.mark.parametrize(
    "update",
    [{"params": {"factor": 0.5}}, {"service": "other"}, {"attempt": 3}, {"dry_run": True},
     {"expires_at": T0 + 9999}, {"remedy": "increase_eviction"}],
)  # fmt: skip
def test_any_changed_field_breaks_the_signature(update: dict[str, object]) -> None:
    keys = Keyring.parse(NEW)
    tampered = command(keys).model_copy(update=update)
    assert verify(tampered, keys, now=T0) == "bad signature"


def test_a_command_survives_the_wire() -> None:
    keys = Keyring.parse(NEW)
    cmd = command(keys, params={"factor": 1})
    again = ActionCommand.model_validate_json(cmd.model_dump_json())
    assert again.params == {"factor": 1.0}
    assert verify(again, keys, now=T0) is None


def test_rotation_signs_with_the_first_key_and_accepts_all() -> None:
    before = Keyring.parse(OLD)
    during = Keyring.parse(f"{NEW},{OLD}")
    old_cmd, new_cmd = command(before), command(during)
    assert (old_cmd.key_id, new_cmd.key_id) == ("old", "new")
    assert verify(old_cmd, during, now=T0) is None
    assert verify(new_cmd, during, now=T0) is None
    after = Keyring.parse(NEW)
    assert verify(old_cmd, after, now=T0) == "unknown key id 'old'"
    assert check_signature(old_cmd, during, accepted=("new",)) == (
        "key id 'old' is not accepted here"
    )


def test_a_wrong_secret_under_a_known_key_id_is_a_bad_signature() -> None:
    forged = command(Keyring.parse("new:attacker-secret-0123456"))
    assert verify(forged, Keyring.parse(NEW), now=T0) == "bad signature"


def test_expiry_is_checked_against_the_given_time() -> None:
    keys = Keyring.parse(NEW)
    cmd = command(keys, ttl_s=60.0)
    assert verify(cmd, keys, now=T0 + 59.9) is None
    assert verify(cmd, keys, now=T0 + 60) == "expired at 1700000060 (now 1700000060)"


def test_params_are_validated_and_device_follows_the_catalog() -> None:
    keys = Keyring.parse(NEW)
    with pytest.raises(ParamError, match="factor: 3 is above"):
        command(keys, params={"factor": 3})
    accel = command(keys, cause="model", remedy="use_mps_efficiently", params={})
    assert accel.device == "mps"
    assert command(keys, device="cuda").device is None  # not an accelerator remedy
    with pytest.raises(ValueError, match="device: 'tpu'"):
        command(keys, cause="model", remedy="use_mps_efficiently", params={}, device="tpu")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("short", "shorter than 16"), ("a:0123456789abcdef,b", "item 2"),
     ("a:0123456789abcdef,a:0123456789abcdef", "appears twice"),
     ("bad kid:0123456789abcdef", "item 1")],
)  # fmt: skip
def test_bad_key_settings_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="PERFLOOP_ACTION_KEY") as info:
        Keyring.parse(text)
    assert message in str(info.value)
    assert "0123456789abcdef" not in str(info.value)


def test_keyring_repr_hides_secrets_and_env_is_required() -> None:
    assert "secret" not in repr(Keyring.parse(NEW)).replace("secrets", "")
    with pytest.raises(ValueError, match="not set"):
        Keyring.from_env({})
    assert Keyring.from_env({"PERFLOOP_ACTION_KEY": NEW}).signing == "new"


def test_signature_of_a_plain_mapping_matches_the_model() -> None:
    keys = Keyring.parse(NEW)
    cmd = command(keys)
    assert signature_of(cmd.model_dump(mode="json"), keys.secrets["new"]) == cmd.signature
