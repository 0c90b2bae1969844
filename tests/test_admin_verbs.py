"""Admin verbs as fprintd and faillock users know them (issue 21): finger names and default, --replace,
identical captures, a count that never jumps, no state left behind by a failed enrolment, users/audit verbs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import write
from models_fixture import finger_image, fixture_models  # noqa: F401 - fixture

from device.cli import main
from device.enrolgroup import grow_group
from device.fingers import UnknownFinger, canonical_finger


def images(tmp: Path, identity: int, name: str, n: int = 3) -> list[str]:
    args = []
    for i in range(n):
        args += ["--image", write(tmp / f"{name}{i}.png", finger_image(identity, i))]
    return args


def test_fprintd_finger_names_are_aliases():
    assert canonical_finger("right-index-finger") == "right-index"
    assert canonical_finger("Left_Thumb") == "left-thumb"
    assert canonical_finger("left little finger") == "left-little"
    with pytest.raises(UnknownFinger, match="right-index-finger"):
        canonical_finger("right-pinky")


def test_count_grows_by_one_and_stays_on_the_first_finger():
    group: list[int] = []
    group = grow_group(group, [0], 0)
    group = grow_group(group, [0, 1], 1)
    assert group == [0, 1]
    assert grow_group(group, [2, 3], 3) == [0, 1]  # another finger's pair does not take over a counted group
    assert grow_group(group, [0, 1, 2, 3], 3) == [0, 1, 3]  # a bridge adds one capture, never a jump of two
    assert grow_group([0], [1, 2], 2) == [1, 2]  # a stray first capture gives way to an agreeing pair


def test_unknown_finger_is_refused_before_anything_loads(env):
    run, tmp = env
    r = run("enroll", "alice", "--finger", "right-pinky", "--model", str(tmp / "missing.json"))
    assert r.exit_code == 2 and r.output.startswith("error: invalid value for '--finger'"), r.output
    assert not (tmp / "state").exists()


def test_default_finger_alias_replace_and_identical_captures(env):
    run, tmp = env
    r = run("enroll", "alice", *images(tmp, 1, "a"))
    assert r.exit_code == 0 and "enrolled alice (right-index)" in r.output, r.output
    r = run("enroll", "alice", "--finger", "right-index-finger", *images(tmp, 1, "b"))
    assert r.exit_code == 2 and "--replace" in r.output, r.output
    r = run("enroll", "alice", "--finger", "right-index-finger", "--replace", *images(tmp, 1, "c"))
    assert r.exit_code == 0 and "re-enrolled" in r.output, r.output
    same = write(tmp / "same.png", finger_image(2, 0))
    r = run("enroll", "bob", "--image", same, "--image", same, "--image", same, "--image", same)
    assert r.exit_code == 2 and "identical to capture 1" in r.output, r.output
    counts = [int(line.rsplit("(", 1)[1].split("/")[0]) for line in r.output.splitlines() if line.startswith("[")]
    assert counts == [1, 1, 1, 1]


def test_failed_enrolment_leaves_no_store_behind(env):
    run, tmp = env
    blank = write(tmp / "blank.png", np.full((288, 256), 255, np.uint8))
    r = run("enroll", "carol", "--image", blank, "--image", blank)
    assert r.exit_code == 2, r.output
    assert not (tmp / "state").exists() or not any((tmp / "state").iterdir()), list((tmp / "state").iterdir())


@pytest.mark.parametrize("bad", ["unknown", "-", "a/b"])
def test_reserved_names_are_refused_by_enrol(env, bad):
    run, tmp = env
    r = run("enroll", bad, "--image", write(tmp / "x.png", finger_image(3, 0)))
    assert r.exit_code == 2 and "reserved" in r.output, r.output


def test_users_list_delete_finger_rename_and_audit_since(env):
    run, tmp = env
    assert run("enroll", "alice", *images(tmp, 1, "a")).exit_code == 0
    assert run("enroll", "alice", "--finger", "left-thumb", *images(tmp, 4, "t")).exit_code == 0
    assert run("enroll", "bob", "--finger", "left-thumb", *images(tmp, 2, "b")).exit_code == 0
    lines = run("users", "list").output.splitlines()
    assert lines[0].split()[:3] == ["name", "finger", "templates"]
    starts = {line.index(line.split()[1]) for line in lines}  # the finger column starts at one position
    assert len(starts) == 1, lines
    assert all(" 3 fingerprint" in line for line in lines[1:]), lines  # the count enrol printed
    r = run("users", "delete", "alice", "--finger", "right-index-finger", "--yes")
    assert r.exit_code == 0 and "deleted alice (right-index)" in r.output, r.output
    people = {u["name"]: u["fingers"] for u in json.loads(run("users", "list", "--json").output)}
    assert people == {"alice": ["left-thumb"], "bob": ["left-thumb"]}
    r = run("users", "delete", "alice", "--finger", "right-index", "--yes")
    assert r.exit_code == 2 and "has no right-index" in r.output
    for bad in ("unknown", "-", "a/b"):
        r = run("users", "rename", "bob", bad)
        assert r.exit_code == 2 and "reserved" in r.output, r.output
    r = run("users", "rename", "ghost", "bob")
    assert r.exit_code == 2 and "no user named 'ghost'" in r.output, r.output
    r = run("--json", "users", "rename", "bob", "robert")
    assert json.loads(r.stdout) == {"renamed": "bob", "to": "robert"}
    recent = run("audit", "tail", "--since", "1h", "--json").output.splitlines()
    assert any(json.loads(line)["event"] == "user.rename" for line in recent)
    assert run("audit", "tail", "--since", "2000-01-01T00:00", "-n", "1").exit_code == 0
    r = run("audit", "tail", "--since", "yesterday")
    assert r.exit_code == 2 and "1h" in r.output


def test_failed_import_and_short_passphrase_change_no_file(env, tmp_path):
    run, tmp = env
    assert run("enroll", "alice", *images(tmp, 1, "a")).exit_code == 0
    backup = tmp / "b.backup"
    runner = CliRunner()
    base = ["--config", str(tmp / "biolock.toml")]
    r = runner.invoke(main, [*base, "--state-dir", str(tmp / "state"), "store", "export", str(backup)],
                      env={"BIOLOCK_BACKUP_PASSPHRASE": "correct horse"})
    assert r.exit_code == 0, r.output
    empty = tmp / "empty"
    r = runner.invoke(main, [*base, "--state-dir", str(empty), "store", "import", str(backup)],
                      env={"BIOLOCK_BACKUP_PASSPHRASE": "wrong passphrase"})
    assert r.exit_code == 2 and r.output.startswith("error: "), r.output
    assert not empty.exists() or not any(empty.iterdir())
    r = runner.invoke(main, [*base, "--state-dir", str(empty), "keys", "init", "--passphrase"],
                      env={"BIOLOCK_NEW_PASSPHRASE": "x"})
    assert r.exit_code == 2 and "at least 8" in r.output, r.output
    assert not empty.exists() or not any(empty.iterdir())
    r = runner.invoke(main, [*base, "--state-dir", str(empty), "store", "import", str(backup), "--json"],
                      env={"BIOLOCK_BACKUP_PASSPHRASE": "correct horse"})
    assert r.exit_code == 0 and json.loads(r.output)["imported"] == 3, r.output
