"""The verify decision the device makes, timed for ``biolock bench`` (issue 16: bench measures what decides).

Why apart from the embedding rows: by default a fingerprint is decided by the embedding fused with biolock's
minutiae matcher, and a vein by the vein model fused with the line matcher (``device.minutiae.setup.resolve``);
``verify_e2e`` times the embedding alone. Here the ``Authenticator`` is built from the configuration the way
``biolock run`` builds it (on one thread, in a throw-away state directory), one finger is enrolled from captures
of the bench image, and ``verify`` runs end to end: region / quality, preprocess, embed, the second matcher's
extraction and comparison, fusion, lockout and the audit row. Its own stages (``Decision.stages_ms``) are
reported too, so a slow decision shows where the time goes.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

USER = "bench"


def captures_of(image: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` distinct captures of one finger: ``image`` and copies with +-2 grey levels of sensor-like noise.

    Why noise: enrolment refuses the same bytes twice, and a probe identical to an enrolled capture would not be
    a fresh touch."""
    rng = np.random.default_rng(seed)
    base = np.asarray(image)
    out = [base]
    for _ in range(n - 1):
        noisy = base.astype(np.int16) + rng.integers(-2, 3, base.shape, dtype=np.int16)
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def bench_config(config: Any, modality: str) -> Any:
    """``config`` for one thread and ``modality``, timing only: an unsupported level or repeated rejects must not
    stop the measurement (the decision and its threshold are unchanged)."""
    r = dataclasses.replace
    return r(config, device=r(config.device, modality=modality),
             inference=r(config.inference, num_threads=1),
             matching=r(config.matching, allow_unsupported_level=True),
             lockout=r(config.lockout, max_failures=100, seconds=0.0, identify_seconds=0.0))


def decision_rows(config: Any, card_path: Path, image: np.ndarray, repeat: int,
                  timed: Callable[..., dict[str, float]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(bench rows, what was measured): ``decision_verify_1t`` (the whole verify call), ``decision_to_decision_1t``
    (up to the decision, before the audit row) and ``decision.STAGE`` per stage of the decision.

    The caller restores its own thread budget afterwards (building the Authenticator applies one thread)."""
    from device.errors import BiolockError
    from device.inference import load_card
    from device.pipeline import Authenticator
    from device.small_sensor import is_small_sensor
    from device.store import init_key

    card = load_card(card_path)
    cfg = bench_config(config, card.modality)
    if is_small_sensor(cfg):  # a touch against a finger's stitched placements: what the partial_* rows time
        return {}, {"error": "small-sensor mode decides a touch against a finger's stitched placements: see the "
                             "partial_* rows"}
    need = cfg.enrol.captures
    shots = captures_of(image, need + 1)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="biolock-bench-decision-") as tmp:
        state = Path(tmp)
        init_key(state)
        try:
            auth = Authenticator.from_config(cfg, state, card_path=card.path)
        except BiolockError as exc:
            return {}, {"error": f"the configured decision cannot be built: {exc}"}
        with auth:
            info: dict[str, Any] = {"matcher": auth.matcher_name, "level": cfg.matching.security,
                                    "threshold": auth.threshold, "threads": 1,
                                    "second_matcher": auth.minutiae is not None}
            enrolled = auth.enroll(USER, "right-index", shots[:need])
            if not enrolled.ok:
                return {}, {**info, "error": f"enrolling the bench image failed: {enrolled.reason}"}
            probe = shots[need]
            decisions: list[Any] = []
            rows["decision_verify_1t"] = timed(lambda: decisions.append(auth.verify(USER, probe)), repeat)
            kept = decisions[len(decisions) - rows["decision_verify_1t"]["n"]:]  # without the warm-up calls
            rows["decision_to_decision_1t"] = _spread([d.latency_ms for d in kept])
            for stage in sorted({k for d in kept for k in d.stages_ms}):
                rows[f"decision.{stage}"] = _spread([d.stages_ms[stage] for d in kept if stage in d.stages_ms])
            info["accepted"] = all(d.accepted for d in kept)
            info["reason"] = kept[-1].reason
    return rows, info


def _spread(samples: list[float]) -> dict[str, Any]:
    return {"median_ms": float(np.median(samples)), "p95_ms": float(np.percentile(samples, 95)), "n": len(samples),
            "cpu_median_ms": None}
