"""The signing key read from a file (``PERFLOOP_ACTION_KEY_FILE``), as a Docker secret is."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfloop.actions.signing import Keyring

SECRET = "a-file-secret-0123456789"


def test_the_signing_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "action-key"
    key_file.write_text(f"k1:{SECRET}\n")
    keys = Keyring.from_env({"PERFLOOP_ACTION_KEY_FILE": str(key_file)})
    assert keys.signing == "k1" and keys.secrets == {"k1": SECRET.encode()}
    assert Keyring.configured({"PERFLOOP_ACTION_KEY_FILE": str(key_file)})
    assert not Keyring.configured({})


def test_a_bad_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("too-short")
    with pytest.raises(ValueError, match=r"PERFLOOP_ACTION_KEY_FILE \(.*short\): the secret"):
        Keyring.from_env({"PERFLOOP_ACTION_KEY_FILE": str(short)})
    with pytest.raises(ValueError, match=r"PERFLOOP_ACTION_KEY_FILE: cannot read '.*missing'"):
        Keyring.from_env({"PERFLOOP_ACTION_KEY_FILE": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match="both set"):
        Keyring.from_env({"PERFLOOP_ACTION_KEY": SECRET, "PERFLOOP_ACTION_KEY_FILE": str(short)})
