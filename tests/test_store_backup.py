"""Encrypted backups: round trip to a new device, wrong passphrase, tampering, conflicts, nothing in clear."""

import base64

import numpy as np
import pytest

from device.errors import StoreError
from device.store import TemplateStore
from device.store import keys as keys_mod

FP = "fingerprint"


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch):
    monkeypatch.setattr(keys_mod, "ARGON2_PARAMS", {"name": "argon2id", "memory_kib": 1024, "iterations": 1,
                                                    "lanes": 1})


def vectors(n, seed):
    return np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)


@pytest.fixture
def source(tmp_path):
    with TemplateStore.open(tmp_path / "a") as s:
        s.enroll("alice", "right-index", FP, "m@1+a", vectors(5, 1))
        s.enroll("alice", "vein-left", "vein", "v@1+b", vectors(3, 2))
        s.enroll("bob", "right-thumb", FP, "m@1+a", vectors(4, 3))
        yield s


def test_round_trip_to_a_store_with_another_key(source, tmp_path):
    backup = tmp_path / "out" / "biolock.backup"
    assert source.export_backup(backup, "long enough passphrase") == 12
    assert backup.stat().st_mode & 0o777 == 0o600
    with pytest.raises(StoreError, match="already exists"):
        source.export_backup(backup, "long enough passphrase")
    assert source.export_backup(backup, "long enough passphrase", overwrite=True) == 12
    with TemplateStore.open(tmp_path / "b") as target:
        assert target.key_id != source.key_id
        assert target.import_backup(backup, "long enough passphrase") == 12
        for modality, model in ((FP, "m@1+a"), ("vein", "v@1+b")):
            want, got = source.gallery(modality, model), target.gallery(modality, model)
            assert want.users == got.users and want.fingers == got.fingers
            np.testing.assert_array_equal(want.matrix, got.matrix)
        assert target.check().ok
        assert target.audit_tail(1)[0].event == "store.import"


def test_backup_holds_nothing_in_clear(source, tmp_path):
    backup = tmp_path / "biolock.backup"
    source.export_backup(backup, "long enough passphrase")
    data = backup.read_bytes()
    assert data.startswith(b"BIOLOCK-BACKUP/1\n")
    # issue 17 item 10: the old raw-bytes check could not fail on a base64 payload; look for every encoding a
    # payload could use (raw, hex, base64 at each alignment), and prove the detector finds a planted leak
    vector = vectors(5, 1)[0].astype("<f4").tobytes()
    secrets = [b"alice", b"bob", b"right-index", b"m@1+a", vector[:24]]
    for secret in secrets:
        assert not _leaks(secret, data), secret
    planted = data + base64.b64encode(b"xx" + vector)
    assert _leaks(vector[:24], planted) and _leaks(b"alice", data + b"alice".hex().encode())


def _leaks(secret: bytes, data: bytes) -> bool:
    """Whether ``secret`` appears in ``data`` raw, as hex, or base64 (standard or urlsafe) at any alignment."""
    forms = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    for shift in range(3):
        part = secret[shift:]
        part = part[:len(part) - len(part) % 3]
        if len(part) >= 3:
            forms |= {base64.b64encode(part), base64.urlsafe_b64encode(part)}
    return any(form in data for form in forms)


def test_wrong_passphrase_or_tampering_imports_nothing(source, tmp_path):
    backup = tmp_path / "biolock.backup"
    source.export_backup(backup, "long enough passphrase")
    with TemplateStore.open(tmp_path / "b") as target:
        with pytest.raises(StoreError, match="wrong passphrase"):
            target.import_backup(backup, "another passphrase")
        data = bytearray(backup.read_bytes())
        for position in (len(data) - 5, len(data) // 2, data.index(b'"created"') + 15):
            changed = bytearray(data)
            changed[position] ^= 0x02
            backup.write_bytes(bytes(changed))
            with pytest.raises(StoreError):
                target.import_backup(backup, "long enough passphrase")
        backup.write_bytes(b"not a backup at all")
        with pytest.raises(StoreError, match="not a biolock backup"):
            target.import_backup(backup, "long enough passphrase")
        assert target.users() == []


def test_existing_users_conflict_unless_replace(source, tmp_path):
    backup = tmp_path / "biolock.backup"
    source.export_backup(backup, "long enough passphrase")
    with TemplateStore.open(tmp_path / "b") as target:
        target.enroll("bob", "left-index", FP, "m@1+a", vectors(2, 9))
        target.enroll("carol", "left-index", FP, "m@1+a", vectors(2, 10))
        with pytest.raises(StoreError, match="bob.*--replace"):
            target.import_backup(backup, "long enough passphrase")
        assert [u.name for u in target.users()] == ["bob", "carol"]
        assert target.import_backup(backup, "long enough passphrase", replace=True) == 12
        info = {u.name: u for u in target.users()}
        assert sorted(info) == ["alice", "bob", "carol"] and info["bob"].fingers == ["right-thumb"]
        assert target.check().ok


def test_short_passphrase_is_refused(source, tmp_path):
    with pytest.raises(StoreError, match="at least"):
        source.export_backup(tmp_path / "x.backup", "short")
    assert not (tmp_path / "x.backup").exists()


def test_backup_with_another_template_size_for_a_model_is_refused(source, tmp_path):
    backup = tmp_path / "biolock.backup"
    source.export_backup(backup, "long enough passphrase")
    with TemplateStore.open(tmp_path / "b") as target:
        target.enroll("dave", "left-index", FP, "m@1+a", np.ones((2, 64), np.float32))
        with pytest.raises(StoreError, match="nothing was imported"):
            target.import_backup(backup, "long enough passphrase")
        assert [u.name for u in target.users()] == ["dave"]
