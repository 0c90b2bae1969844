"""Issue 17 item 5: the store key sealed with systemd-creds, so a copy of the state directory holds no key.

Real parts: the real ``systemd-creds`` binary with its host-secret mode, pointed at a per-test secret file through
``SYSTEMD_CREDENTIAL_SECRET`` (so the machine's own secret is never touched); "another machine" is another secret.
TPM2 is tested only for its refusal and explanation where none is present (there is none on this machine).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import needs_creds

from device.cli import main
from device.errors import KeyError_
from device.store import TemplateStore
from device.store.keys import KEY_FILE
from device.store.sealed import CREDENTIAL, tpm2_state


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SYSTEMD_CREDENTIAL_SECRET", str(tmp_path / "host.secret"))
    state, cred = tmp_path / "state", tmp_path / "etc" / "store-key.cred"
    cred.parent.mkdir()
    with TemplateStore.open(state) as store:
        store.enroll("alice", "right-index", "fingerprint", "m@1", [np.ones(8, np.float32)])
    key = (state / KEY_FILE).read_bytes()
    r = CliRunner().invoke(main, ["--state-dir", str(state), "keys", "seal", "--credential", str(cred),
                                  "--with-key", "host"])
    assert r.exit_code == 0, r.output
    assert f"LoadCredentialEncrypted={CREDENTIAL}:{cred}" in r.output
    return state, cred, key


@needs_creds
def test_after_sealing_no_file_in_the_state_directory_holds_the_key(sealed):
    state, cred, key = sealed
    for path in state.iterdir():
        data = path.read_bytes()
        assert key not in data and key.hex().encode() not in data, path
    assert key not in cred.read_bytes()
    with TemplateStore.open(state) as store:  # as root on this machine: systemd-creds decrypts it
        assert store.check().ok and store.has_user("alice")


@needs_creds
def test_the_service_gets_the_key_from_its_credentials_directory(sealed, tmp_path, monkeypatch):
    state, cred, key = sealed
    creds = tmp_path / "run-creds"
    creds.mkdir()
    (creds / CREDENTIAL).write_bytes(key)  # what systemd puts there for LoadCredentialEncrypted=
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no systemd-creds needed in the service
    with TemplateStore.open(state) as store:
        assert store.has_user("alice")


@needs_creds
def test_a_copied_card_on_another_machine_does_not_open(sealed, tmp_path, monkeypatch):
    state, cred, _ = sealed
    copy = tmp_path / "stolen"
    shutil.copytree(state, copy)
    monkeypatch.setenv("SYSTEMD_CREDENTIAL_SECRET", str(tmp_path / "other-machine.secret"))
    with pytest.raises(KeyError_, match="could not be decrypted") as err:
        TemplateStore.open(copy)
    assert "\n" not in str(err.value)


@needs_creds
def test_rotation_needs_unseal_and_unseal_restores_a_key_file(sealed):
    state, cred, key = sealed
    run = CliRunner().invoke
    r = run(main, ["--state-dir", str(state), "keys", "rotate"])
    assert r.exit_code == 2 and "keys unseal" in r.output
    r = run(main, ["--state-dir", str(state), "keys", "status"])
    assert r.exit_code == 0 and "sealed by systemd-creds (host)" in r.output and "tpm2:" in r.output
    assert run(main, ["--state-dir", str(state), "keys", "unseal"]).exit_code == 0
    assert (state / KEY_FILE).read_bytes() == key
    assert run(main, ["--state-dir", str(state), "keys", "rotate"]).exit_code == 0


def test_tpm2_requested_without_a_tpm_is_explained(tmp_path: Path):
    if shutil.which("systemd-creds") is None:
        pytest.skip("no systemd-creds")
    if tpm2_state()[0]:
        pytest.skip("this machine has a TPM2")
    state = tmp_path / "s"
    TemplateStore.open(state).close()
    r = CliRunner().invoke(main, ["--state-dir", str(state), "keys", "seal", "--credential",
                                  str(tmp_path / "k.cred"), "--with-key", "tpm2"])
    assert r.exit_code == 2 and "no usable TPM2" in r.output and "Traceback" not in r.output
    assert len((state / KEY_FILE).read_bytes()) == 32  # nothing changed


def test_without_systemd_creds_sealing_is_explained(tmp_path: Path, monkeypatch):
    state = tmp_path / "s"
    TemplateStore.open(state).close()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    r = CliRunner().invoke(main, ["--state-dir", str(state), "keys", "seal", "--credential",
                                  str(tmp_path / "k.cred"), "--with-key", "host"])
    assert r.exit_code == 2 and "systemd-creds is not installed" in r.output
    assert len((state / KEY_FILE).read_bytes()) == 32
