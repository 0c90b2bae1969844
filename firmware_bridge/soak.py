"""Honest unlocks, many of them, over a faulty pty (``biolock lock soak``).

Each cycle asks the emulated lock (the real firmware) to open; the counters of the UNLOCK frames a cycle sent
(``Link.unlock_refs``) identify it in the lock's log (no reason travels on the wire). Afterwards the host's
answers are compared with what the lock actually did: every cycle must be either reported successful and
opened exactly once, or reported failed (opened at most once: a lost ACK can hide an opening, which is the
safe direction). Never opened twice; never reported open when it did not open.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from firmware_bridge.emulator import Emulator, Faults
from firmware_bridge.errors import BridgeError
from firmware_bridge.link import Link


@dataclass
class SoakReport:
    cycles: int = 0
    succeeded: int = 0
    failed: int = 0
    crashes: int = 0
    opened_total: int = 0
    duplicated: int = 0  # cycles whose reason opened the lock more than once (must be 0)
    reported_but_not_opened: int = 0  # success reported, no opening seen (must be 0)
    failed_but_opened: int = 0  # reported failed although the lock opened (ACK lost every time)
    failures: Counter = field(default_factory=Counter)
    link_stats: Counter = field(default_factory=Counter)
    faults: dict = field(default_factory=dict)
    flash_writes: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.duplicated == 0 and self.reported_but_not_opened == 0 and self.crashes == 0


def run_soak(
    cycles: int,
    faults: Faults,
    *,
    duration_ms: int = 1,
    timeout_s: float = 0.15,
    retries: int = 3,
    workdir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> SoakReport:
    report = SoakReport()
    with tempfile.TemporaryDirectory(prefix="biolock-soak-", dir=workdir) as tmp:
        emu = Emulator(Path(tmp) / "flash", faults)
        emu.start()
        try:
            emu.set_faults_active(False)
            link = Link.open(emu.port, Path(tmp) / "state", timeout_s=timeout_s, retries=retries)
            link.pair()
            link.hello()
            emu.set_faults_active(True)
            outcomes: dict[str, bool] = {}
            cycle_of: dict[int, str] = {}  # UNLOCK counter -> cycle
            start = time.monotonic()
            for i in range(cycles):
                reason = f"soak-{i}"
                t0 = time.monotonic()
                link.unlock_refs = []
                try:
                    link.unlock(duration_ms, reason)
                    outcomes[reason] = True
                    report.succeeded += 1
                    report.latencies_ms.append((time.monotonic() - t0) * 1000)
                except BridgeError as exc:
                    outcomes[reason] = False
                    report.failed += 1
                    report.failures[type(exc).__name__] += 1
                except Exception as exc:  # anything untyped is a bug
                    outcomes[reason] = False
                    report.crashes += 1
                    report.failures[f"CRASH {type(exc).__name__}"] += 1
                cycle_of.update((ref, reason) for ref in link.unlock_refs)
                report.cycles += 1
                if progress is not None:
                    progress(1)
            report.elapsed_s = time.monotonic() - start
            time.sleep(min(0.5, 10 * timeout_s))  # let the last frames in flight land
            link.close()
        finally:
            emu.stop()
        opened = Counter(cycle_of.get(ref, "?") for _ms, ref in emu.unlock_log)
        report.opened_total = sum(opened.values())
        for reason, success in outcomes.items():
            n = opened.get(reason, 0)
            if n > 1:
                report.duplicated += 1
            if success and n == 0:
                report.reported_but_not_opened += 1
            if not success and n >= 1:
                report.failed_but_opened += 1
        report.link_stats = link.stats
        report.faults = dict(emu.counts)
        report.flash_writes = emu.flash.writes
    return report
