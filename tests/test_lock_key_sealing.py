"""Issue 17 item 5, the lock key: sealed with systemd-creds, lock.key no longer holds it, the link still reads it.

Real parts: the real ``systemd-creds`` with a per-test host secret (``SYSTEMD_CREDENTIAL_SECRET``); the real
``read_key_file`` every Link uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import needs_creds

from device.cli import main
from device.commands.lock import LOCK_CREDENTIAL
from firmware_bridge.errors import KeyFileError
from firmware_bridge.pairing import KEY_FILE, read_key_file, write_key_file


@pytest.fixture
def sealed_lock_key(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SYSTEMD_CREDENTIAL_SECRET", str(tmp_path / "host.secret"))
    state, cred = tmp_path / "state", tmp_path / "etc" / "lock-key.cred"
    cred.parent.mkdir()
    key = bytes(range(32))
    write_key_file(state / KEY_FILE, key)
    r = CliRunner().invoke(main, ["--state-dir", str(state), "lock", "seal-key", "--credential", str(cred),
                                  "--with-key", "host"])
    assert r.exit_code == 0, r.output
    assert f"LoadCredentialEncrypted={LOCK_CREDENTIAL}:{cred}" in r.output
    return state, cred, key


@needs_creds
def test_sealed_lock_key_is_not_on_disk_and_still_reads(sealed_lock_key):
    state, cred, key = sealed_lock_key
    text = (state / KEY_FILE).read_bytes()
    assert key.hex().encode() not in text and key not in text
    assert key not in cred.read_bytes()
    assert read_key_file(state / KEY_FILE) == key


@needs_creds
def test_sealed_lock_key_does_not_open_on_another_machine(sealed_lock_key, tmp_path, monkeypatch):
    state, _, _ = sealed_lock_key
    other = tmp_path / "other.secret"
    other.write_bytes(os.urandom(4096))
    other.chmod(0o600)
    monkeypatch.setenv("SYSTEMD_CREDENTIAL_SECRET", str(other))
    with pytest.raises(KeyFileError, match="could not be decrypted"):
        read_key_file(state / KEY_FILE)


@needs_creds
def test_sealing_twice_is_refused(sealed_lock_key):
    state, cred, _ = sealed_lock_key
    r = CliRunner().invoke(main, ["--state-dir", str(state), "lock", "seal-key", "--credential", str(cred) + "2",
                                  "--with-key", "host"])
    assert r.exit_code != 0 and "already sealed" in r.output


def test_a_damaged_marker_is_a_key_file_error(tmp_path):
    path = tmp_path / KEY_FILE
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="neither hex nor a sealed-key marker"):
        read_key_file(path)
