"""Property-based (stateful) test: any sequence of enrol / delete / rename / rotate matches a plain dict model."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from device.errors import StoreError
from device.store import TemplateStore
from device.store.keys import generate_key

NAMES = st.sampled_from(["alice", "bob", "carol", "dave"])
FINGERS = st.sampled_from(["right-index", "left-index"])
MODELS = st.sampled_from(["m@1+a", "m@2+b"])


class StoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="biolock-stateful-"))
        self.store = TemplateStore.open(self.dir / "state")
        self.model: dict[tuple[str, str], tuple[str, np.ndarray]] = {}  # (user, finger) -> (model id, vectors)
        self.seed = 0

    def teardown(self):
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(user=NAMES, finger=FINGERS, model_id=MODELS, n=st.integers(1, 4))
    def enrol(self, user, finger, model_id, n):
        self.seed += 1
        vectors = np.random.default_rng(self.seed).normal(size=(n, 8)).astype(np.float32)
        self.store.enroll(user, finger, "fingerprint", model_id, vectors)
        self.model[(user, finger)] = (model_id, vectors)

    @rule(user=NAMES)
    def delete(self, user):
        present = any(u == user for u, _ in self.model)
        try:
            self.store.delete_user(user)
            assert present
        except StoreError:
            assert not present
        self.model = {k: v for k, v in self.model.items() if k[0] != user}

    @rule(old=NAMES, new=NAMES)
    def rename(self, old, new):
        users = {u for u, _ in self.model}
        try:
            self.store.rename_user(old, new)
            assert old in users and new not in users
        except StoreError:
            assert old not in users or new in users
            return
        self.model = {((new if u == old else u), f): v for (u, f), v in self.model.items()}

    @rule()
    def rotate(self):
        self.store.rotate_key(generate_key())

    @rule()
    def reopen(self):
        self.store.close()
        self.store = TemplateStore.open(self.dir / "state")

    @invariant()
    def galleries_match_the_model(self):
        for model_id in ("m@1+a", "m@2+b"):
            gallery = self.store.gallery("fingerprint", model_id)
            got = sorted((u, f, tuple(row)) for u, f, row in zip(gallery.users, gallery.fingers, gallery.matrix,
                                                                                    strict=True))
            want = sorted((u, f, tuple(row)) for (u, f), (m, vectors) in self.model.items() if m == model_id
                          for row in vectors)
            assert got == want
        assert sorted(u.name for u in self.store.users()) == sorted({u for u, _ in self.model})
        stale = {u for (u, _), (m, _) in self.model.items() if m != "m@2+b"}
        assert sorted(self.store.stale_users({"fingerprint": "m@2+b"})) == sorted(stale)


StoreMachine.TestCase.settings = settings(max_examples=10, stateful_step_count=10, deadline=None)
TestStoreMachine = StoreMachine.TestCase
