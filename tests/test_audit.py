"""The audit log: what is recorded, what is refused, and the score buckets."""

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.errors import StoreError
from device.store import TemplateStore, score_bucket


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        self.now += 1.0
        return self.now


@pytest.fixture
def store(tmp_path):
    with TemplateStore.open(tmp_path / "state", clock=Clock()) as s:
        yield s


def test_records_come_back_oldest_first(store):
    store.audit("verify", user="alice", decision="accept", score_bucket="0.8-0.9", latency_ms=6.5)
    store.audit("identify", user=None, decision="reject", score_bucket="0.2-0.3", latency_ms=7.25, detail="no match")
    store.audit("verify", user="bob", decision="locked", detail="lockout 30 s")
    records = store.audit_tail(2)
    assert [r.event for r in records] == ["identify", "verify"]
    assert records[0].user is None and records[0].latency_ms == 7.25 and records[0].detail == "no match"
    assert records[0].time < records[1].time
    assert [r.decision for r in store.audit_tail(10)] == ["accept", "reject", "locked"]
    assert store.audit_tail(10)[0].as_dict()["score_bucket"] == "0.8-0.9"


def test_admin_changes_are_audited(store):
    store.enroll("alice", "right-index", "fingerprint", "m", [[0.5, 0.5, 0.1]])
    store.rename_user("alice", "alice2")
    store.delete_user("alice2")
    assert [(r.event, r.user) for r in store.audit_tail()] == [("enrol", "alice"), ("user.rename", "alice2"),
                                                               ("user.delete", "alice2")]


@pytest.mark.parametrize("kwargs", [
    {"event": "", "user": None, "decision": "accept"},
    {"event": "verify", "user": None, "decision": "", "detail": "x"},
    {"event": "verify", "user": "a\x00b", "decision": "accept"},
    {"event": "verify", "user": None, "decision": "accept", "latency_ms": math.nan},
    {"event": "verify", "user": None, "decision": "accept", "score_bucket": "0.612345678901234567"},
])
def test_bad_records_are_refused_and_nothing_written(store, kwargs):
    event = kwargs.pop("event")
    with pytest.raises(StoreError):
        store.audit(event, **kwargs)
    assert store.audit_tail() == []


def test_long_or_multiline_details_are_cut_not_refused(store):
    vector_text = ", ".join(f"{v:.4f}" for v in [0.1234] * 128)
    store.audit("verify", user="alice", decision="reject", detail=vector_text)
    store.audit("verify", user="alice", decision="reject", detail="line\nbreak\x00")
    long, multi = store.audit_tail(2)
    assert len(long.detail) == 200 and long.detail.endswith("...") and long.detail.count("0.1234") < 40
    assert multi.detail == "line break "


@pytest.mark.parametrize("score,bucket", [(0.63, "0.6-0.7"), (0.0, "0.0-0.1"), (1.0, "0.9-1.0"),
                                          (-0.05, "-0.1-0.0"), (-1.0, "-1.0--0.9"), (None, None),
                                          (math.nan, "invalid")])
def test_score_bucket_examples(score, bucket):
    assert score_bucket(score) == bucket


@given(st.floats(-1, 1))
def test_score_bucket_contains_the_score(score):
    low, high = re.fullmatch(r"(-?\d\.\d)-(-?\d\.\d)", score_bucket(score)).groups()
    assert float(low) - 1e-9 <= min(score, 0.999999) < float(high) + 1e-9
    assert float(high) - float(low) == pytest.approx(0.1)


def test_old_records_are_pruned(store, monkeypatch):
    from device.store import audit as audit_mod

    monkeypatch.setattr(audit_mod, "KEEP_ROWS", 100)
    with store.batch():
        for i in range(1000):
            store.audit("verify", user=None, decision="reject", detail=str(i))
    kept = store.audit_tail(5000)
    assert 100 <= len(kept) < 1000 and kept[-1].detail == "999"
