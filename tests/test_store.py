"""The template store: enrolment, galleries, users, model binding, damage handling and concurrent access."""

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.errors import KeyError_, StoreError
from device.store import TemplateStore
from device.store.keys import KEY_FILE, generate_key

FP = "fingerprint"
M1, M2 = "fp-mobile@1.0.0+aaaaaaaaaaaa", "fp-mobile@1.1.0+bbbbbbbbbbbb"


def vectors(n, d=128, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def store(state):
    with TemplateStore.open(state) as s:
        yield s


def test_enrol_and_read_back(store):
    a, b = vectors(5, seed=1), vectors(3, seed=2)
    store.enroll("alice", "right-index", FP, M1, a)
    store.enroll("bob", "left-thumb", FP, M1, list(b))
    np.testing.assert_array_equal(store.user_templates("alice", FP, M1), a)
    gallery = store.gallery(FP, M1)
    assert gallery.users == ["alice"] * 5 + ["bob"] * 3
    assert gallery.fingers == ["right-index"] * 5 + ["left-thumb"] * 3
    assert gallery.matrix.dtype == np.float32 and gallery.matrix.shape == (8, 128)
    np.testing.assert_array_equal(gallery.matrix, np.vstack([a, b]))
    assert store.has_user("alice") and not store.has_user("carol")
    assert store.user_templates("carol", FP, M1).shape == (0, 128)
    assert store.gallery(FP, "unknown@0+0").matrix.shape[0] == 0


def test_reenrolling_a_finger_replaces_it_and_other_fingers_add(store):
    store.enroll("alice", "right-index", FP, M1, vectors(5, seed=1))
    store.enroll("alice", "right-index", FP, M1, vectors(2, seed=3))
    store.enroll("alice", "left-index", FP, M1, vectors(4, seed=4))
    (info,) = store.users()
    assert info.fingers == ["left-index", "right-index"] and info.templates == 6
    fingers = np.array(store.gallery(FP, M1).fingers)
    np.testing.assert_array_equal(store.user_templates("alice", FP, M1)[fingers == "right-index"], vectors(2, seed=3))


def test_enrolment_is_all_or_nothing(store):
    bad = list(vectors(4, seed=1)) + [np.full(128, np.nan, np.float32)]
    with pytest.raises(StoreError, match="NaN"):
        store.enroll("alice", "right-index", FP, M1, bad)
    assert not store.has_user("alice")
    store.enroll("alice", "right-index", FP, M1, vectors(3))
    with pytest.raises(StoreError, match="values"):  # another model size for the same model id
        store.enroll("bob", "right-index", FP, M1, vectors(3, d=64))
    with pytest.raises(StoreError):
        store.enroll("bob", "right-index", FP, M1, [])
    assert [u.name for u in store.users()] == ["alice"]
    assert store.check().ok


@pytest.mark.parametrize("name", ["", " alice", "al\nice", "x" * 65, "tab\t"])
def test_bad_names_are_refused(store, name):
    with pytest.raises(StoreError, match="invalid"):
        store.enroll(name, "right-index", FP, M1, vectors(1))


def test_templates_belong_to_a_model(store):
    store.enroll("alice", "right-index", FP, M1, vectors(3, seed=1))
    store.enroll("bob", "right-index", FP, M2, vectors(3, seed=2))
    store.enroll("carol", "vein-left", "vein", "vein@1+cccccccccccc", vectors(3, d=64, seed=3))
    assert store.gallery(FP, M2).users == ["bob"] * 3  # alice's stale templates are never matched
    assert store.user_templates("alice", FP, M2).shape[0] == 0
    current = {FP: M2, "vein": "vein@1+cccccccccccc"}
    assert store.stale_users(current) == ["alice"]
    flags = {u.name: u.needs_reenrol for u in store.users(current)}
    assert flags == {"alice": True, "bob": False, "carol": False}
    store.enroll("alice", "right-index", FP, M2, vectors(3, seed=4))  # re-enrolment clears it
    assert store.stale_users(current) == []


def test_delete_and_rename(store):
    store.enroll("alice", "right-index", FP, M1, vectors(3, seed=1))
    store.enroll("bob", "right-index", FP, M1, vectors(3, seed=2))
    store.rename_user("alice", "alice.smith")
    np.testing.assert_array_equal(store.user_templates("alice.smith", FP, M1), vectors(3, seed=1))
    with pytest.raises(StoreError, match="already exists"):
        store.rename_user("bob", "alice.smith")
    with pytest.raises(StoreError, match="no user"):
        store.rename_user("nobody", "x")
    store.delete_user("bob")
    with pytest.raises(StoreError, match="no user"):
        store.delete_user("bob")
    assert store.gallery(FP, M1).users == ["alice.smith"] * 3
    assert store.conn.execute("SELECT count(*) FROM templates").fetchone()[0] == 3  # cascade removed bob's
    report = store.check()
    assert report.ok and report.opened == 3


def test_gallery_cache_follows_changes_from_another_process_view(state):
    with TemplateStore.open(state) as daemon, TemplateStore.open(state) as cli:
        daemon.enroll("alice", "right-index", FP, M1, vectors(2, seed=1))
        first = daemon.gallery(FP, M1)
        assert daemon.gallery(FP, M1) is first  # cached
        daemon.audit("verify", user="alice", decision="accept")
        assert daemon.gallery(FP, M1) is first  # audit rows do not invalidate
        cli.enroll("bob", "right-index", FP, M1, vectors(2, seed=2))
        assert daemon.gallery(FP, M1).users == ["alice"] * 2 + ["bob"] * 2
        cli.audit("verify", user="bob", decision="accept")
        kept = daemon.gallery(FP, M1)
        assert daemon.gallery(FP, M1) is kept
        cli.delete_user("alice")
        assert daemon.gallery(FP, M1).users == ["bob"] * 2


def test_key_file_is_private_and_reused(state):
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(2))
        assert {p.name: p.stat().st_mode & 0o777 for p in state.iterdir()} == {
            name: 0o600 for name in ("store.db", "store.db-wal", "store.db-shm", KEY_FILE, "store.gen",
                                     ".store.gen.lock")}
    assert len((state / KEY_FILE).read_bytes()) == 32
    with TemplateStore.open(state, create=False) as s:
        assert s.user_templates("alice", FP, M1).shape == (2, 128)


def test_missing_store_or_key_is_a_clear_error(state):
    with pytest.raises(StoreError, match="no template store"):
        TemplateStore.open(state, create=False)
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(2))
    (state / KEY_FILE).rename(state / "elsewhere")
    with pytest.raises(KeyError_, match="no key file"):
        TemplateStore.open(state)
    assert not (state / KEY_FILE).exists()  # no new key was made for an existing store


def test_wrong_key_is_a_key_error_and_changes_nothing(state):
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(2))
    before = digest(state / "store.db")
    with pytest.raises(KeyError_, match="wrong key"):
        TemplateStore.open(state, generate_key())
    (state / KEY_FILE).write_bytes(generate_key())
    with pytest.raises(KeyError_, match="not the key of this store"):
        TemplateStore.open(state)
    assert digest(state / "store.db") == before


def _sealed_rows(path):
    conn = sqlite3.connect(path)
    try:
        return conn, conn.execute("SELECT t.id, t.sealed, u.name FROM templates t JOIN enrolments e ON "
                                  "t.enrolment_id = e.id JOIN users u ON u.id = e.user_id ORDER BY t.id").fetchall()
    except BaseException:
        conn.close()
        raise


def test_record_pasted_to_another_user_or_model_fails_closed(state):
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(2, seed=1))
        s.enroll("mallory", "right-index", FP, M1, vectors(2, seed=2))
    conn, rows = _sealed_rows(state / "store.db")
    alice_blob = rows[0][1]
    mallory_id = [r[0] for r in rows if r[2] == "mallory"][0]
    with conn:
        conn.execute("UPDATE templates SET sealed = ? WHERE id = ?", (alice_blob, mallory_id))
    conn.close()
    with TemplateStore.open(state) as s:
        report = s.check()
        assert not report.ok and report.opened == 3
        assert any("mallory" in p and "does not authenticate" in p for p in report.problems)
        with pytest.raises(StoreError):
            s.gallery(FP, M1)  # fail closed: no decision on a tampered gallery
        np.testing.assert_array_equal(s.user_templates("alice", FP, M1), vectors(2, seed=1))
    conn = sqlite3.connect(state / "store.db")
    with conn:
        conn.execute("UPDATE enrolments SET model_id = ? WHERE id = 1", (M2,))  # relabel alice's as newer model
    conn.close()
    with TemplateStore.open(state) as s:
        with pytest.raises(StoreError):
            s.user_templates("alice", FP, M2)
        assert s.conn.execute("SELECT count(*) FROM templates").fetchone()[0] == 4  # nothing deleted


def test_tampered_ciphertext_is_reported_not_destroyed(state):
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(3))
    conn, rows = _sealed_rows(state / "store.db")
    blob = bytearray(rows[1][1])
    blob[20] ^= 0x01
    with conn:
        conn.execute("UPDATE templates SET sealed = ? WHERE id = ?", (bytes(blob), rows[1][0]))
    conn.close()
    with TemplateStore.open(state) as s:
        report = s.check()
        assert not report.ok and report.opened == 2 and report.templates == 3
        with pytest.raises(StoreError):
            s.user_templates("alice", FP, M1)
        assert s.check().templates == 3


def test_partial_enrolment_is_reported(state):
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(3))
    conn = sqlite3.connect(state / "store.db")
    with conn:
        conn.execute("DELETE FROM templates WHERE id = (SELECT max(id) FROM templates)")
    conn.close()
    with TemplateStore.open(state) as s:
        report = s.check()
    assert any("partial enrolment" in p for p in report.problems)


def test_garbage_and_empty_files_are_store_errors_and_untouched(state):
    state.mkdir(parents=True)
    db = state / "store.db"
    db.write_bytes(os.urandom(8192))
    before = digest(db)
    with pytest.raises(StoreError, match="damaged|not a"):
        TemplateStore.open(state)
    assert digest(db) == before
    db.write_bytes(b"")
    with pytest.raises(StoreError, match="empty"):
        TemplateStore.open(state)
    assert db.read_bytes() == b""


def test_foreign_sqlite_database_is_refused(state):
    state.mkdir(parents=True)
    conn = sqlite3.connect(state / "store.db")
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a biolock store"):
        TemplateStore.open(state)


def test_truncated_database_is_a_store_error_or_reported(state):
    with TemplateStore.open(state) as s:
        for i in range(40):
            s.enroll(f"user{i:02d}", "right-index", FP, M1, vectors(5, seed=i))
    db = state / "store.db"
    assert not (state / "store.db-wal").exists() or (state / "store.db-wal").stat().st_size == 0
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    before = digest(db)
    try:
        with TemplateStore.open(state) as s:
            report = s.check()
        assert not report.ok
    except StoreError as exc:
        assert "damaged" in str(exc) or "malformed" in str(exc)
    assert digest(db) == before


def test_newer_schema_is_refused(state):
    with TemplateStore.open(state):
        pass
    conn = sqlite3.connect(state / "store.db")
    with conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        TemplateStore.open(state)


def test_closed_store_is_a_clear_error(state):
    s = TemplateStore.open(state)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.users()


def test_templates_never_in_clear_in_database_or_audit(state):
    marker = np.full(128, 0.0884, np.float32)  # distinctive bytes
    marker[:4] = [0.123456, -0.654321, 0.111111, 0.999]
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, [marker, marker * 0.5])
        on_disk = b"".join(p.read_bytes() for p in state.iterdir())
        audit_text = repr(s.audit_tail(50))
    needle = marker.astype("<f4").tobytes()[:16]
    assert needle not in on_disk and (marker * 0.5).astype("<f4").tobytes()[:16] not in on_disk
    assert "0.123" not in audit_text


BUSY_HOLDER = textwrap.dedent("""
    import sys, time
    from device.store import TemplateStore
    s = TemplateStore.open(sys.argv[1])
    s.conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    s.conn.execute("COMMIT")
""")

WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from device.store import TemplateStore
    rng = np.random.default_rng(int(sys.argv[2]))
    with TemplateStore.open(sys.argv[1]) as s:
        for i in range(15):
            s.enroll(f"{sys.argv[3]}{i}", "right-index", "fingerprint", "m@1+x", rng.normal(size=(3, 32)))
            s.audit("verify", user=None, decision="reject")
            s.record_failure("identify", float(i))
""")


def _python(code, *args, **kw):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True,
                            **kw)


def test_two_processes_write_at_the_same_time(state):
    with TemplateStore.open(state):
        pass
    procs = [_python(WRITER, state, seed, name) for seed, name in ((1, "cli"), (2, "daemon"))]
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    with TemplateStore.open(state) as s:
        assert len(s.users()) == 30
        report = s.check()
        assert report.ok and report.templates == 90
        assert len(s.audit_tail(1000)) >= 60


def test_writer_waits_for_a_lock_then_busy_is_a_clear_error(state):
    with TemplateStore.open(state):
        pass
    holder = _python(BUSY_HOLDER, state, 0.6)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with TemplateStore.open(state, busy_timeout_s=10) as s:
            s.enroll("alice", "right-index", FP, M1, vectors(2))  # waits for the holder's commit
            assert s.has_user("alice")
    finally:
        holder.communicate(timeout=30)
    holder = _python(BUSY_HOLDER, state, 5)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with TemplateStore.open(state, busy_timeout_s=0.05) as s:
            with pytest.raises(StoreError, match="busy"):
                s.enroll("bob", "right-index", FP, M1, vectors(2))
            assert s.gallery(FP, M1).users == ["alice"] * 2  # readers are not blocked (WAL)
    finally:
        holder.kill()
        holder.communicate(timeout=30)


def test_one_store_shared_by_threads(store):
    import threading

    errors = []

    def writer(prefix):
        try:
            for i in range(15):
                store.enroll(f"{prefix}{i}", "right-index", FP, M1, vectors(2, seed=i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader():
        try:
            for _ in range(40):
                gallery = store.gallery(FP, M1)
                assert len(gallery.users) == gallery.matrix.shape[0]
                store.audit("identify", user=None, decision="reject")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ab"] + [threading.Thread(target=reader)
                                                                         for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.users()) == 30 and store.gallery(FP, M1).matrix.shape == (60, 128) and store.check().ok


def test_sealed_non_finite_template_fails_closed(store):
    """A validly sealed record with NaN inside (a bug or a forged key holder) never reaches matching."""
    from device.store import db, records

    store.enroll("alice", "right-index", FP, M1, vectors(2))
    plain = b"BLT1" + (128).to_bytes(2, "little") + np.full(128, np.nan, "<f4").tobytes()
    with db.transaction(store.conn):
        user_id, uid = store.conn.execute("SELECT id, uid FROM users WHERE name = 'alice'").fetchone()
        records.insert_enrolment(store.conn, store._key, user_id, uid, "left-index", FP, M1, [plain], 128, 0.0)
        db.bump_generation(store.conn)
    with pytest.raises(StoreError, match="non-finite"):
        store.gallery(FP, M1)
    with pytest.raises(StoreError, match="non-finite"):
        store.user_templates("alice", FP, M1)
    assert any("non-finite" in p for p in store.check().problems)


def test_an_older_store_is_migrated_in_place(state, monkeypatch):
    from device.store import db

    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(2))
    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, "ALTER TABLE users ADD COLUMN note TEXT"])
    monkeypatch.setattr(db, "SCHEMA_VERSION", len(db.MIGRATIONS))
    with TemplateStore.open(state) as s:
        assert db.schema_version(s.conn) == len(db.MIGRATIONS)
        assert "note" in [r[1] for r in s.conn.execute("PRAGMA table_info(users)")]
        assert s.check().ok and s.user_templates("alice", FP, M1).shape == (2, 128)


@settings(max_examples=15, deadline=None)
@given(victim=st.integers(0, 5), position=st.integers(0, 545), bit=st.integers(0, 7))
def test_any_single_bit_flip_in_the_database_is_found_by_check(tmp_path_factory, victim, position, bit):
    state = tmp_path_factory.mktemp("flip") / "state"
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(3, seed=1))
        s.enroll("bob", "right-index", FP, M1, vectors(3, seed=2))
        template_id, blob = s.conn.execute("SELECT id, sealed FROM templates ORDER BY id LIMIT 1 OFFSET ?",
                                           (victim,)).fetchone()
        changed = bytearray(blob)
        changed[position] ^= 1 << bit
        s.conn.execute("UPDATE templates SET sealed = ? WHERE id = ?", (bytes(changed), template_id))
    with TemplateStore.open(state) as s:
        report = s.check()
    assert report.opened == 5 and len(report.problems) == 1
    assert report.problems[0].startswith(f"template {template_id} of user")


def test_stale_users_of_one_user_looks_at_that_user_only(state):
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, M1, vectors(2))
        s.enroll("bob", "right-index", FP, "old-model@1", vectors(2))
        assert s.stale_users({FP: M1}) == ["bob"]
        assert s.stale_users({FP: M1}, only="bob") == ["bob"]
        assert s.stale_users({FP: M1}, only="alice") == []
        assert s.stale_users({FP: M1}, only="nobody") == []
