"""Byte templates in the store (schema 4, issue 18): small-sensor placements of up to 16 KB sealed like embeddings,
a store of the old schema migrated with its users intact, damage refused, backups and key rotation carrying them.

Real SQLite, real AES-GCM; the templates are real ``SmallSensorEnrolment`` templates of synthetic R503 touches.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from device.errors import StoreError
from device.store import TemplateStore, db
from device.store.crypto import MAX_BLOB, SealError
from device.store.keys import generate_key

FP = "fingerprint"
EMB = "fp-mobile@1.0.0+aaaaaaaaaaaa"
PARTIAL = "fingerprint-partial"
PM = "biolock-partial-orb128/t1s1+blpe1"


def vectors(n, d=128, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def placements_template():
    """A real multi-placement template (BLPE, 10 placements in 16 KB) of one synthetic R503 finger."""
    from device.fingerprint.placements import SmallSensorEnrolment
    from device.minutiae.base import MinutiaeError
    from device.minutiae.partial_backend import PartialMatcher
    from training.r503_scores import r503_touch

    m, e = PartialMatcher(dpi=508), SmallSensorEnrolment(placements=10)
    for imp in range(40):
        if e.done:
            break
        try:
            e.add(m.keypoints(r503_touch(18, 0, imp)), (189, 189))
        except MinutiaeError:  # a saturated or blank synthetic touch: refused, as the device refuses it
            pass
    t = e.template()
    assert 4 * 1024 < len(t) <= 16 * 1024  # over the 2,047 bytes a minutiae vector slot holds
    return t


def test_a_16_kb_placements_template_round_trips_and_survives_rotation_and_backup(tmp_path, placements_template):
    state, other = tmp_path / "state", tmp_path / "other"
    big = placements_template
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, EMB, vectors(3))
        s.enroll_bytes("alice", "right-index", PARTIAL, PM, [big])
        s.enroll_bytes("bob", "left-index", PARTIAL, PM, [b"\x00" * 10, bytes(range(256))])
        g = s.byte_templates(PARTIAL, PM)
        assert g.users == ("alice", "bob", "bob") and g.fingers == ("right-index", "left-index", "left-index")
        assert g.templates[0] == big and g.templates[2] == bytes(range(256))
        assert s.byte_templates(PARTIAL, PM, user="bob").templates == (b"\x00" * 10, bytes(range(256)))
        assert s.byte_templates(PARTIAL, PM, user="carol").templates == ()
        sealed = s.conn.execute("SELECT length(sealed) FROM templates ORDER BY length(sealed) DESC").fetchone()[0]
        assert sealed == 12 + 8 + len(big) + 16  # nonce, BLB1 + length, the bytes, tag: no float packing
        assert big not in (state / "store.db").read_bytes()  # sealed, never in clear
        assert s.rotate_key(generate_key()) == 6
        assert s.byte_templates(PARTIAL, PM).templates[0] == big and s.check().ok
        assert s.export_backup(tmp_path / "b.backup", "long passphrase") == 6
        u = {x.name: x for x in s.users({PARTIAL: PM})}
        assert u["alice"].templates == 4 and not u["alice"].needs_reenrol
    with TemplateStore.open(other) as s:
        assert s.import_backup(tmp_path / "b.backup", "long passphrase") == 6
        assert s.byte_templates(PARTIAL, PM).templates[0] == big
        np.testing.assert_array_equal(s.user_templates("alice", FP, EMB), vectors(3))
        assert s.check().ok


def test_limits_and_kinds_are_not_mixed(tmp_path):
    with TemplateStore.open(tmp_path / "state") as s:
        s.enroll_bytes("alice", "right-index", PARTIAL, PM, [b"x" * MAX_BLOB])
        with pytest.raises(StoreError, match="1..65536 bytes"):
            s.enroll_bytes("bob", "right-index", PARTIAL, PM, [b"x" * (MAX_BLOB + 1)])
        with pytest.raises(StoreError, match="1..65536 bytes"):
            s.enroll_bytes("bob", "right-index", PARTIAL, PM, [b""])
        with pytest.raises(StoreError, match="at least one"):
            s.enroll_bytes("bob", "right-index", PARTIAL, PM, [])
        with pytest.raises(StoreError, match="has bytes templates"):
            s.enroll("bob", "right-index", PARTIAL, PM, vectors(2))
        with pytest.raises(StoreError, match="has vector templates"):
            s.enroll("bob", "left-index", FP, EMB, vectors(1)) or s.enroll_bytes("bob", "x", FP, EMB, [b"y"])
        assert not s.has_user("carol") and s.check().ok


def _old_schema_store(state):
    """A store as the biolock before schema 4 leaves it: schema 3, no ``enrolments.kind``, one enrolled user.

    Made with this code, then taken back to schema 3 by SQL (the migration only appends the column, and vector
    records are sealed exactly as before), so the file is what the old biolock writes."""
    with TemplateStore.open(state) as s:
        s.enroll("alice", "right-index", FP, EMB, vectors(3, seed=4))
    conn = sqlite3.connect(state / "store.db")
    conn.execute("ALTER TABLE enrolments DROP COLUMN kind")
    conn.execute("DELETE FROM schema_version WHERE version = 4")
    conn.commit()
    assert "kind" not in [r[1] for r in conn.execute("PRAGMA table_info(enrolments)")]
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (3,)
    conn.close()


def test_a_store_of_the_old_schema_is_migrated_and_its_users_keep_working(tmp_path, monkeypatch,
                                                                          placements_template):
    state = tmp_path / "state"
    _old_schema_store(state)
    with TemplateStore.open(state) as s:
        assert db.schema_version(s.conn) == db.SCHEMA_VERSION == 4
        assert s.conn.execute("SELECT kind FROM enrolments").fetchall() == [("vector",)]
        np.testing.assert_array_equal(s.user_templates("alice", FP, EMB), vectors(3, seed=4))
        assert s.check().ok
        s.enroll_bytes("alice", "left-index", PARTIAL, PM, [placements_template])
        assert s.byte_templates(PARTIAL, PM).users == ("alice",)
        assert s.gallery(FP, EMB).users == ["alice"] * 3 and s.check().ok
    # a biolock before schema 4 refuses the migrated store instead of misreading its byte templates
    with monkeypatch.context() as m:
        m.setattr(db, "MIGRATIONS", db.MIGRATIONS[:3])
        m.setattr(db, "SCHEMA_VERSION", 3)
        with pytest.raises(StoreError, match="schema version 4, newer"):
            TemplateStore.open(state)


def test_damaged_moved_or_foreign_byte_templates_never_open(tmp_path, placements_template):
    state = tmp_path / "state"
    with TemplateStore.open(state) as s:
        s.enroll_bytes("alice", "right-index", PARTIAL, PM, [placements_template])
        s.enroll_bytes("bob", "right-index", PARTIAL, PM, [placements_template[:100]])
    conn = sqlite3.connect(state / "store.db")
    (tid, blob), (bob_tid, _) = conn.execute("SELECT id, sealed FROM templates ORDER BY id").fetchall()
    flipped = bytearray(blob)
    flipped[len(flipped) // 2] ^= 0x10
    conn.execute("UPDATE templates SET sealed = ? WHERE id = ?", (bytes(flipped), tid))
    conn.commit()
    with TemplateStore.open(state) as s:
        with pytest.raises(SealError, match="does not authenticate"):
            s.byte_templates(PARTIAL, PM)
        report = s.check()
        assert not report.ok and any(f"template {tid} of user 'alice'" in p for p in report.problems)
    # bob's record pasted over alice's (a valid record of another user): still does not open
    conn.execute("UPDATE templates SET sealed = (SELECT sealed FROM templates WHERE id = ?) WHERE id = ?",
                 (bob_tid, tid))
    conn.commit()
    with TemplateStore.open(state) as s, pytest.raises(SealError):
        s.byte_templates(PARTIAL, PM)
    # an embedding enrolment relabelled as bytes by SQL: its plaintext is no byte template
    conn.execute("DELETE FROM users")
    conn.commit()
    conn.close()
    with TemplateStore.open(state) as s:
        s.enroll("carol", "right-index", PARTIAL + "x", PM, vectors(1))
    conn = sqlite3.connect(state / "store.db")
    conn.execute("UPDATE enrolments SET kind = 'bytes', dim = 0")
    conn.commit()
    conn.close()
    with TemplateStore.open(state) as s:
        with pytest.raises(StoreError, match="unknown format"):
            s.byte_templates(PARTIAL + "x", PM)
        assert any("unknown format" in p for p in s.check().problems)


def test_a_damaged_placements_template_inside_a_sound_record_scores_zero(placements_template):
    """The store returns what was sealed; the matcher refuses a template it did not write (typed error)."""
    from device.fingerprint.partial_match import PartialTemplateError
    from device.fingerprint.placements import decode_placements

    assert len(decode_placements(placements_template)) >= 1
    bad = bytearray(placements_template)
    bad[len(bad) // 2] ^= 1
    for foreign in (bytes(bad), placements_template[:-1], b"BLPK" + placements_template[4:], b"\x00" * 64):
        with pytest.raises(PartialTemplateError):
            decode_placements(foreign)
