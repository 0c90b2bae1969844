"""Power loss: SIGKILL a process in the middle of enrolment, key rotation and import, then check the store.

Each round forks a real writer process, lets it run for a random moment and kills it with SIGKILL (no
cleanup, like a power cut). Afterwards the store must open with its key file, ``check()`` must find every
record sound, no enrolment may be partial, and after rotation the key that opens it must be one of the keys
the writer used (old or new), with every record opening under exactly that key.
"""

import os
import random
import signal
import time
import traceback

import numpy as np
import pytest

from device.store import TemplateStore
from device.store import keys as keys_mod
from device.store.crypto import key_check_value
from device.store.keys import KEY_FILE, load_key

FAST_KDF = {"name": "argon2id", "memory_kib": 1024, "iterations": 1, "lanes": 1}

def _worker(state, mode, log, backup, ready_fd):
    """The writer, run in a forked child (imports already done, so a round costs milliseconds to start)."""
    rng = np.random.default_rng(os.getpid())
    with TemplateStore.open(state) as store:
        os.write(ready_fd, b"r")
        i = 0
        while True:
            i += 1
            if mode == "enroll":
                store.enroll(f"w{os.getpid()}-{i}", "right-index", "fingerprint", "m@1+a", rng.normal(size=(5, 128)))
            elif mode == "rotate":
                new = keys_mod.generate_key()
                with open(log, "a") as f:
                    f.write(new.hex() + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                store.rotate_key(new)
            else:
                store.import_backup(backup, "crash test passphrase", replace=True)


@pytest.fixture
def populated(tmp_path, monkeypatch):
    monkeypatch.setattr(keys_mod, "ARGON2_PARAMS", FAST_KDF)
    state = tmp_path / "state"
    rng = np.random.default_rng(0)
    with TemplateStore.open(state) as store:
        for i in range(20):
            store.enroll(f"imp{i}", "right-index", "fingerprint", "m@1+a", rng.normal(size=(5, 128)))
        store.export_backup(tmp_path / "import.backup", "crash test passphrase")
        for i in range(20):
            store.delete_user(f"imp{i}")
        for i in range(40):
            store.enroll(f"base{i}", "left-index", "fingerprint", "m@1+a", rng.normal(size=(5, 128)))
    return state


def _kill_mid_write(state, mode, log, backup, rng):
    """Fork a writer (no open connection crosses the fork), let it run a random moment, SIGKILL it."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            _worker(state, mode, log, backup, write_fd)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 1) == b"r", f"{mode} worker failed to start"
        time.sleep(rng.uniform(0.01, 0.25))
    finally:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(read_fd)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{mode} worker died by itself"


def test_sigkill_during_enrol_rotate_and_import_leaves_a_consistent_store(populated, tmp_path):
    rng = random.Random(1234)
    log = tmp_path / "keys.log"
    backup = tmp_path / "import.backup"
    known_keys = {load_key(populated)}
    modes = ["enroll"] * 7 + ["rotate"] * 7 + ["import"] * 6
    rotations = 0
    for mode in modes:
        _kill_mid_write(populated, mode, log, backup, rng)
        if log.exists():
            known_keys |= {bytes.fromhex(line) for line in log.read_text().split()}
        with TemplateStore.open(populated) as store:
            report = store.check()
            assert report.ok, (mode, report.problems)
            assert report.opened == report.templates == 5 * report.enrolments
            names = {u.name for u in store.users()}
            imported = {n for n in names if n.startswith("imp")}
            assert imported in (set(), {f"imp{i}" for i in range(20)}), mode  # an import is all or nothing
            rotations = sum(1 for r in store.audit_tail(100_000) if r.event == "keys.rotate")
        key = load_key(populated)
        assert key in known_keys  # the store's key is one the writer made (old or new), never a mixture
        assert sum(key_check_value(k) == key_check_value(key) for k in known_keys) == 1
        assert not (populated / (KEY_FILE + ".new")).exists()
    assert len(known_keys) > 1  # the writer really was rotating when it was killed
    print(f"{len(known_keys) - 1} rotations started, {rotations} committed")
