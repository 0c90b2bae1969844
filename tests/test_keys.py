"""Key files, passphrases and key rotation (including an interrupted rotation)."""

import json
import os

import numpy as np
import pytest

from device.errors import KeyError_, StoreError
from device.store import TemplateStore, init_key, load_key, rotation
from device.store import keys as keys_mod
from device.store.keys import KEY_FILE, PENDING_KEY_FILE, generate_key


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch):
    """Real Argon2id/scrypt, with small costs so the tests stay fast."""
    monkeypatch.setattr(keys_mod, "ARGON2_PARAMS", {"name": "argon2id", "memory_kib": 1024, "iterations": 1,
                                                    "lanes": 1})
    monkeypatch.setattr(keys_mod, "SCRYPT_PARAMS", {"name": "scrypt", "n": 1024, "r": 8, "p": 1})
    monkeypatch.delenv("BIOLOCK_PASSPHRASE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def vectors(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 64)).astype(np.float32)


def test_init_creates_a_private_key_once(tmp_path):
    key = init_key(tmp_path / "s")
    path = tmp_path / "s" / KEY_FILE
    assert path.read_bytes() == key and len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "s").stat().st_mode & 0o077 == 0
    with pytest.raises(KeyError_, match="already exists"):
        init_key(tmp_path / "s")
    assert path.read_bytes() == key
    assert load_key(tmp_path / "s") == key


def test_missing_open_or_damaged_key_files(tmp_path):
    with pytest.raises(KeyError_, match="keys init"):
        load_key(tmp_path)
    init_key(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(KeyError_, match="chmod 600"):
        load_key(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o600)
    (tmp_path / KEY_FILE).write_bytes(b"\x01" * 31)
    with pytest.raises(KeyError_, match="damaged"):
        load_key(tmp_path)


def test_passphrase_protected_key(tmp_path, monkeypatch):
    key = init_key(tmp_path, passphrase="correct horse")
    content = (tmp_path / KEY_FILE).read_bytes()
    assert key not in content and key.hex() not in content.decode()
    assert json.loads(content)["kdf"]["name"] in ("argon2id", "scrypt")
    with pytest.raises(KeyError_, match="passphrase"):
        load_key(tmp_path)
    with pytest.raises(KeyError_, match="wrong passphrase"):
        load_key(tmp_path, "battery staple")
    assert load_key(tmp_path, "correct horse") == key
    monkeypatch.setenv("BIOLOCK_PASSPHRASE", "correct horse")
    assert load_key(tmp_path) == key
    monkeypatch.delenv("BIOLOCK_PASSPHRASE")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "biolock-passphrase").write_text("correct horse\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_key(tmp_path) == key


def test_scrypt_and_hostile_parameters(tmp_path):
    key = generate_key()
    content = keys_mod.wrap_key(key, "pw", keys_mod.SCRYPT_PARAMS)
    assert keys_mod.unwrap_key(content, "pw") == key
    doc = json.loads(content)
    doc["kdf"]["n"] = 1 << 40  # a file asking for terabytes of memory is refused, not attempted
    with pytest.raises(KeyError_, match="outside"):
        keys_mod.unwrap_key(json.dumps(doc).encode(), "pw")
    doc["kdf"] = {"name": "md5"}
    with pytest.raises(KeyError_, match="unknown key derivation"):
        keys_mod.unwrap_key(json.dumps(doc).encode(), "pw")
    with pytest.raises(KeyError_, match="empty"):
        keys_mod.derive_key("", b"s" * 16, keys_mod.SCRYPT_PARAMS)


def test_store_with_passphrase_key(tmp_path):
    state = tmp_path / "s"
    init_key(state, passphrase="pw one")
    with pytest.raises(KeyError_, match="passphrase"):
        TemplateStore.open(state)
    with TemplateStore.open(state, passphrase="pw one") as s:
        s.enroll("alice", "ri", "fingerprint", "m", vectors(2))
        s.rotate_key(generate_key())  # keeps the same protection by default
    with TemplateStore.open(state, passphrase="pw one") as s:
        s.rotate_key(generate_key(), passphrase="pw two")
    with pytest.raises(KeyError_, match="wrong passphrase"):
        TemplateStore.open(state, passphrase="pw one")
    with TemplateStore.open(state, passphrase="pw two") as s:
        assert s.check().ok
        s.rotate_key(generate_key(), passphrase=None)
    assert len((state / KEY_FILE).read_bytes()) == 32


def test_rotation_keeps_a_passphrase_given_through_the_environment(tmp_path, monkeypatch):
    state = tmp_path / "s"
    init_key(state, passphrase="from env")
    monkeypatch.setenv("BIOLOCK_PASSPHRASE", "from env")
    with TemplateStore.open(state) as s:
        new = generate_key()
        s.rotate_key(new)
    assert keys_mod.needs_passphrase((state / KEY_FILE).read_bytes())
    assert load_key(state, "from env") == new


def test_rotation_reseals_everything(tmp_path):
    state = tmp_path / "s"
    with TemplateStore.open(state) as s:
        s.enroll("alice", "ri", "fingerprint", "m", vectors(3, 1))
        s.enroll("bob", "ri", "fingerprint", "m", vectors(3, 2))
        old_key, old_blobs = load_key(state), s.conn.execute("SELECT sealed FROM templates").fetchall()
        old_id = s.key_id
        new_key = generate_key()
        assert s.rotate_key(new_key) == 6
        assert s.key_id != old_id
        assert not set(old_blobs) & set(s.conn.execute("SELECT sealed FROM templates").fetchall())
        np.testing.assert_array_equal(s.user_templates("bob", "fingerprint", "m"), vectors(3, 2))
        with pytest.raises(KeyError_, match="current key"):
            s.rotate_key(new_key)
        assert s.audit_tail(1)[0].event == "keys.rotate"
    assert load_key(state) == new_key and not (state / PENDING_KEY_FILE).exists()
    with pytest.raises(KeyError_):
        TemplateStore.open(state, old_key)
    with TemplateStore.open(state) as s:
        report = s.check()
        assert report.ok and report.opened == 6


def test_rotation_with_a_damaged_record_changes_nothing(tmp_path):
    state = tmp_path / "s"
    with TemplateStore.open(state) as s:
        s.enroll("alice", "ri", "fingerprint", "m", vectors(3))
        s.conn.execute("UPDATE templates SET sealed = substr(sealed, 1, 20) || x'00' WHERE id = 2")
    key = load_key(state)
    with TemplateStore.open(state) as s:
        with pytest.raises(StoreError):
            s.rotate_key(generate_key())
        assert not (state / PENDING_KEY_FILE).exists()
        assert s.check().opened == 2
    assert load_key(state) == key


def test_crash_after_commit_is_finished_on_next_open(tmp_path, monkeypatch):
    state = tmp_path / "s"
    with TemplateStore.open(state) as s:
        s.enroll("alice", "ri", "fingerprint", "m", vectors(3))
    old = load_key(state)
    new = generate_key()

    def power_cut(*_):
        raise SystemExit("power cut")

    monkeypatch.setattr(rotation, "finish_pending", power_cut)
    with TemplateStore.open(state) as s, pytest.raises(SystemExit):
        s.rotate_key(new)
    monkeypatch.undo()
    assert (state / KEY_FILE).read_bytes() == old and (state / PENDING_KEY_FILE).read_bytes() == new
    with TemplateStore.open(state) as s:  # committed: the pending key is the key now
        assert s.check().ok
    assert (state / KEY_FILE).read_bytes() == new and not (state / PENDING_KEY_FILE).exists()


def test_crash_before_commit_keeps_the_old_key(tmp_path):
    state = tmp_path / "s"
    with TemplateStore.open(state) as s:
        s.enroll("alice", "ri", "fingerprint", "m", vectors(3))
    old = load_key(state)
    keys_mod.write_atomic(state / PENDING_KEY_FILE, generate_key())  # rotation stopped before its commit
    (state / ".store.key.new.123.tmp").write_bytes(b"half")
    with TemplateStore.open(state) as s:
        assert s.check().ok
    assert load_key(state) == old
    assert sorted(p.name for p in state.iterdir() if "key" in p.name) == [KEY_FILE]


def test_wrong_key_and_pending_unrelated_is_an_error(tmp_path):
    state = tmp_path / "s"
    with TemplateStore.open(state):
        pass
    (state / KEY_FILE).write_bytes(generate_key())
    keys_mod.write_atomic(state / PENDING_KEY_FILE, generate_key())
    with pytest.raises(KeyError_, match="not the key of this store"):
        TemplateStore.open(state)
    assert (state / PENDING_KEY_FILE).exists()  # nothing removed when nothing matches


def test_a_running_daemon_follows_a_rotation_by_the_cli(tmp_path):
    state = tmp_path / "s"
    with TemplateStore.open(state) as daemon, TemplateStore.open(state) as cli:
        daemon.enroll("alice", "ri", "fingerprint", "m", vectors(3, 1))
        before = daemon.gallery("fingerprint", "m").matrix.copy()
        cli.rotate_key(generate_key())
        np.testing.assert_array_equal(daemon.gallery("fingerprint", "m").matrix, before)  # reloaded, new key
        daemon.enroll("bob", "ri", "fingerprint", "m", vectors(3, 2))  # sealed with the new key, not the old
        assert daemon.key_id == cli.key_id
        report = cli.check()
        assert report.ok and report.opened == 6


def test_a_store_opened_with_an_explicit_key_refuses_after_rotation(tmp_path):
    state = tmp_path / "s"
    key = init_key(state)
    with TemplateStore.open(state, key) as daemon, TemplateStore.open(state) as cli:
        daemon.enroll("alice", "ri", "fingerprint", "m", vectors(3, 1))
        cli.rotate_key(generate_key())
        with pytest.raises(KeyError_, match="rotated by another process"):
            daemon.gallery("fingerprint", "m")
        with pytest.raises(KeyError_, match="rotated by another process"):
            daemon.enroll("bob", "ri", "fingerprint", "m", vectors(3, 2))
        assert not cli.has_user("bob") and cli.check().ok


def test_interrupted_rotation_with_a_passphrase_is_finished(tmp_path, monkeypatch):
    state = tmp_path / "s"
    init_key(state, passphrase="pw")
    with TemplateStore.open(state, passphrase="pw") as s:
        s.enroll("alice", "ri", "fingerprint", "m", vectors(3))
    new = generate_key()
    monkeypatch.setattr(rotation, "finish_pending", lambda *_: (_ for _ in ()).throw(SystemExit("power cut")))
    with TemplateStore.open(state, passphrase="pw") as s, pytest.raises(SystemExit):
        s.rotate_key(new)
    monkeypatch.undo()
    with pytest.raises(KeyError_, match="passphrase"):
        TemplateStore.open(state)  # both key files need the passphrase; nothing is touched without it
    assert (state / PENDING_KEY_FILE).exists()
    with TemplateStore.open(state, passphrase="pw") as s:
        assert s.check().ok
    assert load_key(state, "pw") == new and not (state / PENDING_KEY_FILE).exists()
