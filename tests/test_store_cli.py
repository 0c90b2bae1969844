"""The store's admin commands end to end: keys, users, store export/import/check, audit tail."""

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from device.cli import main
from device.store import TemplateStore
from device.store import keys as keys_mod
from device.store.keys import KEY_FILE


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch):
    monkeypatch.setattr(keys_mod, "ARGON2_PARAMS", {"name": "argon2id", "memory_kib": 1024, "iterations": 1,
                                                    "lanes": 1})
    for name in ("BIOLOCK_PASSPHRASE", "BIOLOCK_NEW_PASSPHRASE", "BIOLOCK_BACKUP_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def state():
    return Path(os.environ["BIOLOCK_STATE_DIR"])


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env)


def enrol(state, *names):
    with TemplateStore.open(state) as store:
        for i, name in enumerate(names):
            store.enroll(name, "right-index", "fingerprint", "m@1+a",
                         np.random.default_rng(i).normal(size=(3, 16)))


def test_keys_init_once(state):
    result = run("keys", "init")
    assert result.exit_code == 0, result.output
    assert "key id" in result.output and (state / KEY_FILE).stat().st_mode & 0o777 == 0o600
    key = (state / KEY_FILE).read_bytes()
    assert "none (raw key" in run("keys", "status").output
    again = run("keys", "init")
    assert again.exit_code == 2 and "already exists" in again.output and "Traceback" not in again.output
    assert (state / KEY_FILE).read_bytes() == key


def test_keys_init_with_passphrase_then_commands_need_it(state):
    result = run("keys", "init", "--passphrase", env={"BIOLOCK_NEW_PASSPHRASE": "pass phrase one"})
    assert result.exit_code == 0, result.output
    shown = run("keys", "status", env={"BIOLOCK_PASSPHRASE": "pass phrase one"})
    assert shown.exit_code == 0 and "passphrase (argon2id)" in shown.output
    assert result.output.split("key id ")[1][:8] in shown.output
    locked = run("users", "list")
    assert locked.exit_code == 2 and "BIOLOCK_PASSPHRASE" in locked.output
    wrong = run("users", "list", env={"BIOLOCK_PASSPHRASE": "nope"})
    assert wrong.exit_code == 2 and "wrong passphrase" in wrong.output
    ok = run("users", "list", env={"BIOLOCK_PASSPHRASE": "pass phrase one"})
    assert ok.exit_code == 0 and "no users" in ok.output


def test_users_list_rename_delete(state):
    enrol(state, "alice", "bob")
    listing = run("users", "list")
    assert listing.exit_code == 0 and "alice" in listing.output and "bob" in listing.output
    data = json.loads(run("users", "list", "--json").output)
    assert [(u["name"], u["templates"], u["fingers"]) for u in data] == [("alice", 3, ["right-index"]),
                                                                          ("bob", 3, ["right-index"])]
    assert run("users", "rename", "alice", "alice.smith").exit_code == 0
    assert run("users", "delete", "bob").exit_code == 1  # asks; no answer on stdin aborts
    assert run("users", "delete", "bob", "--yes").exit_code == 0
    missing = run("users", "delete", "bob", "--yes")
    assert missing.exit_code == 2 and "no user named 'bob'" in missing.output
    assert [u["name"] for u in json.loads(run("users", "list", "--json").output)] == ["alice.smith"]
    events = [json.loads(line)["event"] for line in run("audit", "tail", "--json").output.splitlines()]
    assert events[-2:] == ["user.rename", "user.delete"]


def test_no_store_is_a_clear_error():
    result = run("users", "list")
    assert result.exit_code == 2 and "no template store" in result.output


def test_export_import_check_and_rotate(state, tmp_path):
    enrol(state, "alice", "bob")
    backup = tmp_path / "b.backup"
    env = {"BIOLOCK_BACKUP_PASSPHRASE": "backup passphrase"}
    result = run("store", "export", str(backup), env=env)
    assert result.exit_code == 0 and "exported 6 templates" in result.output
    again = run("store", "export", str(backup), env=env)
    assert again.exit_code == 2 and "already exists" in again.output
    assert run("store", "export", str(backup), "--force", env=env).exit_code == 0
    other = tmp_path / "other"
    result = run("--state-dir", str(other), "store", "import", str(backup), env=env)
    assert result.exit_code == 0 and "imported 6 templates" in result.output, result.output
    conflict = run("--state-dir", str(other), "store", "import", str(backup), env=env)
    assert conflict.exit_code == 2 and "--replace" in conflict.output
    assert run("--state-dir", str(other), "store", "import", str(backup), "--replace", env=env).exit_code == 0
    wrong = run("--state-dir", str(other), "store", "import", str(backup),
                env={"BIOLOCK_BACKUP_PASSPHRASE": "not the one"})
    assert wrong.exit_code == 2 and "wrong passphrase" in wrong.output

    check = run("store", "check")
    assert check.exit_code == 0 and check.output.strip().endswith("ok") and "6/6 templates" in check.output
    old_key = (state / KEY_FILE).read_bytes()
    rotated = run("keys", "rotate")
    assert rotated.exit_code == 0 and "6 templates re-encrypted" in rotated.output
    assert (state / KEY_FILE).read_bytes() != old_key
    assert json.loads(run("store", "check", "--json").output)["ok"] is True


def test_check_reports_damage_with_exit_2(state):
    enrol(state, "alice")
    conn = sqlite3.connect(state / "store.db")
    with conn:
        conn.execute("UPDATE templates SET sealed = zeroblob(40) WHERE id = 1")
    conn.close()
    result = run("store", "check")
    assert result.exit_code == 2 and "problem: template 1 of user 'alice'" in result.output
    report = json.loads(run("store", "check", "--json").output.split("\nerror:")[0])
    assert report["ok"] is False and report["opened"] == 2


def test_audit_tail(state):
    enrol(state, "alice")
    with TemplateStore.open(state) as store:
        store.audit("verify", user="alice", decision="accept", score_bucket="0.8-0.9", latency_ms=5.0)
        store.audit("identify", user=None, decision="reject", score_bucket="0.1-0.2", latency_ms=6.0)
    lines = run("audit", "tail", "-n", "2").output.splitlines()
    assert len(lines) == 2 and "verify" in lines[0] and "alice" in lines[0] and "score 0.8-0.9" in lines[0]
    assert "identify" in lines[1] and " - " in lines[1] and "reject" in lines[1]
    records = [json.loads(line) for line in run("audit", "tail", "--json").output.splitlines()]
    assert [r["event"] for r in records] == ["enrol", "verify", "identify"]
    assert run("audit", "tail", "-n", "0").exit_code == 2


def test_users_list_flags_users_of_another_model(state, tmp_path):
    card = {
        "format": "biolock-model-card/1", "name": "fingerprint-mobile", "version": "2.0.0",
        "modality": "fingerprint", "file": "fingerprint_int8.tflite", "sha256": "ab" * 32,
        "onnx_file": None, "onnx_sha256": None,
        "input": {"shape": [1, 96, 96, 1], "dtype": "int8", "scale": 0.0039, "zero_point": -128},
        "output": {"shape": [1, 16], "dtype": "int8", "scale": 0.0078, "zero_point": 0},
        "embedding_size": 16, "preprocessing": "fingerprint-v1", "quantization": "int8-full",
        "thresholds": {"1e-3": 0.61, "1e-4": 0.70, "2e-5": 0.75}, "metrics": {}, "trained_on": "test",
        "created": "2026-11-22",
    }
    (tmp_path / "card.json").write_text(json.dumps(card))
    (tmp_path / "biolock.toml").write_text(f'[inference]\nmodel = "{tmp_path / "card.json"}"\n')
    current = f"fingerprint-mobile@2.0.0+{'ab' * 6}"
    enrol(state, "alice")  # enrolled under "m@1+a", an older model
    with TemplateStore.open(state) as store:
        store.enroll("bob", "right-index", "fingerprint", current, np.ones((2, 16)))
    data = json.loads(run("--config", str(tmp_path / "biolock.toml"), "users", "list", "--json").output)
    assert {u["name"]: u["needs_reenrol"] for u in data} == {"alice": True, "bob": False}
    text = run("--config", str(tmp_path / "biolock.toml"), "users", "list").output
    assert "needs re-enrolment" in [line for line in text.splitlines() if line.startswith("alice")][0]
