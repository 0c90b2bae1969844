"""Per-touch accuracy of small-sensor enrolment (issue 18), simulated on real partial prints cut to small windows.

    python -m training.partial_enrol_sim ../shared/data/fingerprint/polyu_hrf_500dpi --crop 128x128 \
        --placements 10 --budget 16384 --impostors 20

Protocol (the one docs/partial-prints.md reports): a folder of ``FFF/FFF_S_I.png`` images (finger, session,
impression; polyu_hrf_500dpi's layout). Each finger is enrolled with ``SmallSensorEnrolment`` from the windows of
its session-1 impressions, ``len(--enrol-seeds)`` windows per impression (``device.evaluation.crop``'s window,
one per seed), offered impression by impression until ``--placements`` are stored. Probes: the session-2
windows that ``biolock eval --crop`` cuts (seed 18). Every probe is scored against its own finger's template
(genuine) and against ``--impostors`` other fingers' templates chosen at random (seed ``--pair-seed``; 0 = every
other finger). Reported: fingers enrolled, placements, touches refused, coverage, template bytes, genuine and
impostor counts, EER (FVC rule and linear), FNMR at FMR 1e-3 and 1e-4 with the false matches at that threshold,
probes that could not be acquired (counted as non-matches in ``fnmr_with_fta``). ``--out FILE`` writes every
score (``{"genuine": [...], "impostor": [...]}``: what ``training.r503_scores --held-out`` reads).

Evaluation only: the images are never copied and nothing is fitted on them. Ridge images of the windows are
cached under ``--cache`` (default: a folder in the system's temporary directory, outside the repository).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from device.evaluation.crop import DEFAULT_SEED, crop_image, parse_crop
from device.evaluation.scoring import eer_linear
from device.fingerprint import placements as pl
from device.fingerprint.errors import FingerprintError
from device.fingerprint.partial import RidgeImage, ridge_image
from device.fingerprint.partial_match import MIN_KEYPOINTS, keypoints
from training import metrics


def _index(root: Path) -> dict[str, dict[int, list[Path]]]:
    """finger -> session -> impressions (sorted), from ``FFF/FFF_S_I.png`` names."""
    out: dict[str, dict[int, list[Path]]] = {}
    for p in sorted(root.glob("*/*.png")):
        parts = p.stem.split("_")
        if len(parts) != 3:
            continue
        out.setdefault(parts[0], {}).setdefault(int(parts[1]), []).append(p)
    return out


def _ridge(path: Path, size: tuple[int, int], seed: int) -> RidgeImage | None:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    try:
        return ridge_image(crop_image(grey, size, seed))
    except FingerprintError:
        return None


def load_windows(root: Path, size: tuple[int, int], enrol_seeds: list[int], cache: Path,
                 fingers: int = 0) -> dict[str, dict[str, list]]:
    """finger -> {"enrol": [RidgeImage|None, ...], "probe": [...]} (cached by folder, window and seeds)."""
    index = _index(root)
    names = sorted(index)[:fingers] if fingers else sorted(index)
    key = hashlib.sha256(json.dumps([str(root.resolve()), size, enrol_seeds, names]).encode()).hexdigest()[:16]
    path = cache / f"windows-{key}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    out = {}
    for name in names:
        sessions = index[name]
        enrol = [_ridge(p, size, s) for p in sessions.get(1, []) for s in enrol_seeds]
        probe = [_ridge(p, size, DEFAULT_SEED) for p in sessions.get(2, [])]
        out[name] = {"enrol": enrol, "probe": probe}
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(out, f)
    return out


def enrol(ridges: list[RidgeImage | None], args) -> tuple[pl.SmallSensorEnrolment, int]:
    e = pl.SmallSensorEnrolment(placements=args.placements, budget=args.budget)
    refused = 0
    for r in ridges:
        if e.done:
            break
        if r is None:
            refused += 1
            continue
        kp = keypoints(r)
        if len(kp) < MIN_KEYPOINTS or not e.add(kp, r.image.shape).accepted:
            refused += 1
    return e, refused


def shipped_template(e: pl.SmallSensorEnrolment) -> tuple[object, int]:
    """What the device stores: ``template()`` bytes, decoded the way verification decodes them."""
    t = e.template()
    return pl.decode_placements(t), len(t)


def run(args, build=shipped_template, score=pl.verify_score) -> dict:
    size = parse_crop(args.crop)
    data = load_windows(Path(args.root), size, args.enrol_seeds, Path(args.cache), args.fingers)
    names = sorted(data)
    t0 = time.process_time()
    templates, placed, refused, coverage, nbytes = {}, [], 0, [], []
    for name in names:
        e, r = enrol(data[name]["enrol"], args)
        refused += r
        if not e.stored:
            continue
        templates[name], n = build(e)
        placed.append(len(e.stored))
        coverage.append(e.coverage())
        nbytes.append(n)
    enrol_s = time.process_time() - t0
    rng = np.random.default_rng(args.pair_seed)
    enrolled = sorted(templates)
    genuine, impostor, fta, times = [], [], 0, []
    for name in enrolled:
        others = [o for o in enrolled if o != name]
        if args.impostors and args.impostors < len(others):
            others = list(rng.choice(others, args.impostors, replace=False))
        for r in data[name]["probe"]:
            kp = keypoints(r, args.touch_keypoints) if r is not None else None
            if kp is None or len(kp) < MIN_KEYPOINTS:
                fta += 1
                continue
            t = time.process_time()
            genuine.append(score(templates[name], kp))
            times.append(time.process_time() - t)
            impostor.extend(score(templates[o], kp) for o in others)
    g, i = np.array(genuine), np.array(impostor)
    e = metrics.eer(g, i)
    out = {"fingers": len(names), "enrolled": len(enrolled), "placements_mean": float(np.mean(placed)),
           "placements_min": int(np.min(placed)), "refused": refused, "coverage_mean": float(np.mean(coverage)),
           "template_bytes_max": int(np.max(nbytes)), "template_bytes_mean": float(np.mean(nbytes)),
           "genuine": int(g.size), "impostor": int(i.size), "probe_fta": fta,
           "eer_fvc": e.eer, "eer_linear": eer_linear(g, i)}
    for label, fmr in (("1e-3", 1e-3), ("1e-4", 1e-4)):
        thr = metrics.threshold_at_fmr(i, fmr)
        out[f"threshold_{label}"] = thr
        out[f"false_matches_{label}"] = int(np.count_nonzero(i >= thr))
        out[f"fnmr_{label}"] = float(np.mean(g < thr))
        out[f"fnmr_with_fta_{label}"] = float((np.count_nonzero(g < thr) + fta) / (g.size + fta))
    out["verify_ms_median_cpu"] = 1000 * statistics.median(times)
    out["enrol_cpu_s"] = enrol_s
    if getattr(args, "out", None):  # every score (e.g. a held-out set for training.r503_scores --held-out)
        Path(args.out).write_text(json.dumps({"genuine": g.tolist(), "impostor": i.tolist(), "summary": out}))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.partial_enrol_sim", description=__doc__.splitlines()[0])
    ap.add_argument("root", help="folder of FFF/FFF_S_I.png images (e.g. ../shared/data/fingerprint/polyu_hrf_500dpi)")
    ap.add_argument("--crop", default="128x128")
    ap.add_argument("--placements", type=int, default=pl.DEFAULT_PLACEMENTS)
    ap.add_argument("--budget", type=int, default=pl.BUDGET)
    ap.add_argument("--enrol-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[18, 19, 20])
    ap.add_argument("--impostors", type=int, default=20, help="other fingers per probe (0: every other finger)")
    ap.add_argument("--pair-seed", type=int, default=7)
    ap.add_argument("--fingers", type=int, default=0, help="first N fingers only (0: all)")
    ap.add_argument("--touch-keypoints", type=int, default=400, help="keypoints of the live touch")
    ap.add_argument("--out", default=None, help="write every genuine and impostor score here (JSON)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "biolock-partial-sim"))
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    print(json.dumps(run(args), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
