"""Issue 17 item 4: store integrity without the key (attacks with SQL and file copies; real SQLite, real HMAC).

Attacks from the issue: three SQL UPDATEs swapping user names let bob's finger open as alice while `store check`
said ok; restoring an older store.db brought deleted users back and erased lockouts; a deleted store.db was
silently replaced by an empty one.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from device.cli import main
from device.errors import StoreError
from device.store import TemplateStore, integrity
from device.store.crypto import SealError

FP, M1 = "fingerprint", "m@1"


def vectors(seed: int, n: int = 2) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    with TemplateStore.open(state) as store:
        store.enroll("alice", "right-index", FP, M1, vectors(1))
        store.enroll("bob", "right-index", FP, M1, vectors(2))
    return state


def sql(state: Path, *statements: str) -> None:
    conn = sqlite3.connect(state / "store.db")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def cli(state: Path, *args: str):
    return CliRunner().invoke(main, ["--state-dir", str(state), *args])


def test_swapping_user_names_by_sql_fails_closed_and_check_names_both(state: Path):
    sql(state, "UPDATE users SET name = 'tmp' WHERE name = 'alice'",
        "UPDATE users SET name = 'alice' WHERE name = 'bob'",
        "UPDATE users SET name = 'bob' WHERE name = 'tmp'")
    with TemplateStore.open(state) as store:
        with pytest.raises(SealError, match="does not authenticate"):
            store.gallery(FP, M1)  # bob's finger can no longer open as alice: no decision on this gallery
        with pytest.raises(SealError):
            store.user_templates("alice", FP, M1)
        problems = store.check().problems
    assert any("'alice'" in p and "name does not authenticate" in p for p in problems)
    assert any("'bob'" in p and "name does not authenticate" in p for p in problems)
    r = cli(state, "store", "check")
    assert r.exit_code == 2 and "name does not authenticate" in r.output


def test_rename_delete_and_rotation_keep_names_authentic(state: Path):
    with TemplateStore.open(state) as store:
        store.rename_user("alice", "alice.smith")
        store.delete_user("bob")
        from device.store.keys import generate_key

        store.rotate_key(generate_key())
        assert store.gallery(FP, M1).users == ["alice.smith", "alice.smith"]
        assert store.check().ok, store.check().problems


def test_restoring_an_older_store_db_is_refused_as_rolled_back(state: Path, tmp_path: Path):
    shutil.copy(state / "store.db", tmp_path / "old.db")  # the attacker's copy, taken while alice was enrolled
    with TemplateStore.open(state) as store:
        store.delete_user("alice")
        for _ in range(5):
            store.record_failure("bob", 10.0)  # bob's name is under attack: locked out
    shutil.copy(tmp_path / "old.db", state / "store.db")
    with pytest.raises(StoreError, match="rolled back"):
        TemplateStore.open(state)
    r = cli(state, "store", "check")
    assert r.exit_code == 2 and "rolled back" in r.output and "Traceback" not in r.output
    r = cli(state, "store", "accept-restore", "--yes")  # the admin restored it on purpose
    assert r.exit_code == 0, r.output
    with TemplateStore.open(state) as store:
        assert store.has_user("alice") and store.check().ok
        assert store.audit_tail(1)[0].event == "store.accept-restore"


def test_raising_the_generation_without_the_key_does_not_authenticate(state: Path, tmp_path: Path):
    shutil.copy(state / "store.db", tmp_path / "old.db")
    with TemplateStore.open(state) as store:
        store.delete_user("alice")
    shutil.copy(tmp_path / "old.db", state / "store.db")
    sql(state, "UPDATE meta SET value = 1000 WHERE name = 'seq'")
    with pytest.raises(StoreError, match="does not authenticate"):
        TemplateStore.open(state)


def test_a_deleted_store_db_is_an_error_not_a_new_empty_store(state: Path):
    (state / "store.db").unlink()
    before = sorted(p.name for p in state.iterdir())
    with pytest.raises(StoreError, match="missing"):
        TemplateStore.open(state)
    assert sorted(p.name for p in state.iterdir()) == before  # nothing was created
    r = cli(state, "users", "list")
    assert r.exit_code == 2 and "missing" in r.output


def test_a_store_from_before_generations_is_upgraded_once(state: Path):
    sql(state, "DELETE FROM meta WHERE name IN ('seq', 'seq_mac')", "UPDATE users SET name_mac = NULL")
    (state / integrity.GEN_FILE).unlink()
    with TemplateStore.open(state) as store:
        assert store.check().ok and store.gallery(FP, M1).users.count("alice") == 2
        assert store.audit_tail(1)[0].event == "store.upgrade"
    assert json.loads((state / integrity.GEN_FILE).read_text())["generation"] == 1


def test_a_pre_generation_copy_restored_over_an_upgraded_store_is_rolled_back(state: Path, tmp_path: Path):
    sql(state, "DELETE FROM meta WHERE name IN ('seq', 'seq_mac')", "UPDATE users SET name_mac = NULL")
    with pytest.raises(StoreError, match="rolled back"):  # store.gen exists: this database is older than it
        TemplateStore.open(state)


def test_store_gen_behind_the_database_is_caught_up_not_an_alarm(state: Path):
    """What a kill -9 between a commit and the store.gen write leaves behind."""
    with TemplateStore.open(state) as store:
        store.record_failure("bob", 1.0)
        seq = integrity.stored_seq(store.conn)
    integrity.write_gen(state, seq - 1, force=True)
    with TemplateStore.open(state) as store:
        assert store.check().ok
    assert integrity.read_gen(state) == seq


def test_a_missing_store_gen_is_reported(state: Path):
    (state / integrity.GEN_FILE).unlink()
    with pytest.raises(StoreError, match="store.gen is missing"):
        TemplateStore.open(state)


def test_a_rolled_back_change_never_reaches_store_gen(state: Path):
    """A failed batch counted a change it never committed; a later commit must not record that generation."""
    with TemplateStore.open(state) as store:
        with pytest.raises(RuntimeError), store.batch():
            store.record_failure("bob", 1.0)
            raise RuntimeError("crash before the commit")
        with store.batch():
            store.audit("verify", user="bob", decision="reject")  # commits, but changes no generation
        assert integrity.read_gen(state) == integrity.stored_seq(store.conn)
    TemplateStore.open(state).close()  # no false "rolled back"


def test_generation_writers_serialise_and_spare_a_live_writers_temporary_file(tmp_path):
    """Two processes committing at once: opening a store must not delete the other's half-written generation file,
    and the recorded generation never goes backwards."""
    import os

    from device.store import integrity

    state = tmp_path / "state"
    state.mkdir()
    live = state / f".{integrity.GEN_FILE}.{os.getpid()}.0000.tmp"  # this (live) process's write in progress
    dead = state / f".{integrity.GEN_FILE}.999999999.0000.tmp"  # a writer that crashed
    live.write_text("x")
    dead.write_text("x")
    integrity._remove_stale_temporaries(state)
    assert live.exists() and not dead.exists()
    integrity.write_gen(state, 7)
    integrity.write_gen(state, 5)  # a slower writer with an older generation
    assert integrity.read_gen(state) == 7
