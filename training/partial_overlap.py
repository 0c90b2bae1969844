"""How much do two windows of one finger overlap, and how does the partial matcher do at each overlap? (issue 18)

    python -m training.partial_overlap ../shared/data/fingerprint/polyu_hrf_500dpi --crop 128x128 [--placement centred]

The EER of one small window against one small window has a floor: two windows cut from different parts of a
finger share nothing to match. This measures it on a folder of ``FFF/FFF_S_I.png`` whole prints
(polyu_hrf_500dpi's layout): every genuine pair of impressions is registered on the *whole* images by the partial
matcher (a rigid motion trusted only with at least ``--min-inliers`` consistent matches), the two windows that
``biolock eval --crop`` cuts (seed 18) are put in one frame through that motion, and their overlap (share of a
window) is measured. Impostors: the first impression of every finger against every other's, windows only.
Reported per overlap band: genuine pairs, their median window score, and FNMR at the window-vs-window threshold of
FMR 1e-3; plus the EER over the genuine pairs whose windows overlap at least half. Evaluation only: nothing is
fitted or stored.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from device.evaluation.crop import DEFAULT_SEED, choose_window, parse_crop
from device.fingerprint.errors import FingerprintError
from device.fingerprint.partial import ridge_image
from device.fingerprint.partial_match import keypoints, match_count, match_motion
from training import metrics

BANDS = ((0.0, 0.01), (0.01, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01))


def _overlap(motion: np.ndarray, a: tuple[int, int], b: tuple[int, int], size: tuple[int, int]) -> float:
    """Share of window ``b`` (top-left ``b`` in image B) covered by window ``a`` of image A moved by ``motion``."""
    w, h = size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    pa = cv2.transform((corners + a)[None], motion)[0].astype(np.float32)
    pb = (corners + b).astype(np.float32)
    area, _ = cv2.intersectConvexConvex(pa, pb)
    return float(area) / (w * h)


def run(args) -> dict:
    size = parse_crop(args.crop)
    root = Path(args.root)
    fingers: dict[str, list[Path]] = {}
    for p in sorted(root.glob("*/*.png")):
        fingers.setdefault(p.parent.name, []).append(p)
    names = sorted(fingers)[: args.fingers] if args.fingers else sorted(fingers)
    whole, win, pos = {}, {}, {}
    for name in names:
        for p in fingers[name]:
            grey = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            x, y = choose_window(grey, size, DEFAULT_SEED, args.placement)
            pos[p] = (x, y)
            try:
                whole[p] = keypoints(ridge_image(grey))
                win[p] = keypoints(ridge_image(np.ascontiguousarray(grey[y:y + size[1], x:x + size[0]])))
            except FingerprintError:
                whole[p] = win[p] = None
    genuine, overlaps, unregistered = [], [], 0
    for name in names:
        for a, b in itertools.combinations(fingers[name], 2):
            if whole[a] is None or whole[b] is None or win[a] is None or win[b] is None:
                unregistered += 1
                continue
            count, motion = match_motion(whole[a], whole[b])
            if motion is None or count < args.min_inliers:
                unregistered += 1
                continue
            overlaps.append(_overlap(motion, pos[a], pos[b], size))
            genuine.append(match_count(win[a], win[b]))
    firsts = [fingers[n][0] for n in names]
    impostor = [match_count(win[a], win[b]) for a, b in itertools.combinations(firsts, 2)
                if win[a] is not None and win[b] is not None]
    g, i, ov = np.array(genuine, float), np.array(impostor, float), np.array(overlaps)
    thr = metrics.threshold_at_fmr(i, 1e-3)
    out = {"genuine_registered": int(g.size), "genuine_unregistered": unregistered, "impostor": int(i.size),
           "eer_all_registered": metrics.eer(g, i).eer, "threshold_1e-3": thr, "fnmr_1e-3_all": float(np.mean(g < thr)),
           "bands": []}
    for lo, hi in BANDS:
        sel = (ov >= lo) & (ov < hi)
        some = bool(sel.any())
        out["bands"].append({"overlap": f"{lo:.2f}-{min(hi, 1.0):.2f}", "pairs": int(sel.sum()),
                             "share": float(sel.mean()), "median_score": float(np.median(g[sel])) if some else None,
                             "fnmr_1e-3": float(np.mean(g[sel] < thr)) if some else None})
    half = ov >= 0.5
    if half.any():
        out["eer_overlap_at_least_half"] = metrics.eer(g[half], i).eer
        out["genuine_overlap_at_least_half"] = int(half.sum())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.partial_overlap", description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--crop", default="128x128")
    ap.add_argument("--placement", choices=("uniform", "centred"), default="uniform")
    ap.add_argument("--fingers", type=int, default=0, help="first N fingers only (0: all)")
    ap.add_argument("--min-inliers", type=int, default=20, help="whole-image matches needed to trust the motion")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    print(json.dumps(run(args), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
