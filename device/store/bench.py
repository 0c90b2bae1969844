"""Timings of the template store in a throw-away directory (``biolock store bench``).

Why separate from unit tests: numbers depend on the machine and its load, so they are printed, never asserted.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from device.store import keys
from device.store.templatestore import TemplateStore


def _timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """Wall-clock median/p95 and the median CPU time of this process (less sensitive to a busy machine)."""
    samples, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "p95_ms": samples[min(len(samples) - 1,
                                                                             int(0.95 * len(samples)))],
            "cpu_ms": statistics.median(cpu)}


def run_bench(templates: int = 10_000, dim: int = 128, per_user: int = 5, repeat: int = 5,
              progress: Callable[[str], None] = lambda _: None) -> dict:
    """Fill a temporary store with ``templates`` random embeddings and time the operations the device uses."""
    rng = np.random.default_rng(0)
    users = max(1, templates // per_user)
    results: dict = {"templates": users * per_user, "dim": dim, "per_user": per_user}
    with tempfile.TemporaryDirectory(prefix="biolock-store-bench-") as tmp:
        state = Path(tmp)
        with TemplateStore.open(state) as store:
            progress(f"enrolling {users} users x {per_user}")
            enrol_ms, enrol_cpu = [], []
            for u in range(users):
                vectors = rng.normal(size=(per_user, dim)).astype(np.float32)
                start, start_cpu = time.perf_counter(), time.process_time()
                store.enroll(f"user{u:06d}", "right-index", "fingerprint", "bench@1+0", vectors)
                enrol_ms.append((time.perf_counter() - start) * 1000)
                enrol_cpu.append((time.process_time() - start_cpu) * 1000)
            results["enrol_transaction"] = {"median_ms": statistics.median(enrol_ms),
                                            "p95_ms": sorted(enrol_ms)[int(0.95 * (len(enrol_ms) - 1))],
                                            "cpu_ms": statistics.median(enrol_cpu)}

            def cold_gallery() -> None:
                store._cache.clear()
                store.gallery("fingerprint", "bench@1+0")

            progress("gallery and reads")
            results["gallery_cold"] = _timed(cold_gallery, repeat)
            results["gallery_cached"] = _timed(lambda: store.gallery("fingerprint", "bench@1+0"), 200)
            results["user_templates"] = _timed(lambda: store.user_templates("user000000", "fingerprint",
                                                                            "bench@1+0"), 200)
            results["audit_append"] = _timed(lambda: store.audit("bench", user=None, decision="reject"), 200)
            results["lockout_failure"] = _timed(lambda: store.record_failure("bench", 0.0), 200)
            progress("check and rotate")
            results["check"] = _timed(store.check, 1)
            results["rotate"] = _timed(lambda: store.rotate_key(keys.generate_key()), 1)
            progress("backup")
            results["export"] = _timed(lambda: store.export_backup(state / "b.backup", "bench passphrase"), 1)
        results["kdf"] = _timed(lambda: keys.derive_key("bench passphrase", b"\0" * 16, keys.default_kdf()), 3)
        results["kdf_name"] = keys.default_kdf()["name"]
        db_bytes = sum(p.stat().st_size for p in state.glob("store.db*"))
        results["db_bytes_per_template"] = db_bytes / max(1, results["templates"])
        results["sealed_template_bytes"] = 12 + 16 + 6 + 4 * dim
    return results
