"""Does the per-image fingerprint quality predict failure? An error-versus-reject curve on real prints, and the gates.

NFIQ 2's test (ISO/IEC 29794-1): sort the genuine pairs by pair quality (the lower of the two captures' scores),
drop the lowest 0 / 5 / 10 / 20 %, and measure the FNMR of the rest at a fixed threshold. A score that predicts
failure makes the curve fall; a random score leaves it flat. Thresholds: the shipped card's ``balanced`` one
(``models/fingerprint_minutiae.json``, per pair of captures) and each set's own EER threshold (every
cross-identity pair as impostors). Then the device's gates (``device.fingerprint.quality.VERIFY_MIN`` and
``ENROL_MIN``): how many images each refuses (failure to acquire) and the FNMR with and without them.

    python -m training.fp_quality_bench                              # the six FVC DB_B sets
    python -m training.fp_quality_bench --sets polyu_hrf_500dpi/all  # held-out partial prints (FVC protocol)
    python -m training.fp_quality_bench --synthetic 50               # gate rates on synthetic R307 prints

Evaluation only: nothing here is fitted on these sets. Needs ../shared/data (``--data``).
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

from training.fp_extract_bench import DATA, MAX_ALL_PAIRS_IMAGES, SETS, dpi_of, set_images
from training.protocol import fvc_pairs

CARD = Path(__file__).resolve().parents[1] / "models" / "fingerprint_minutiae.json"
FRACTIONS = (0.0, 0.05, 0.10, 0.20)


def card_threshold(card_path: Path = CARD, level: str = "balanced") -> float:
    """The card's threshold for ``level`` as a raw biolock matcher score (the card gives the embedding weight 0)."""
    from device.fusion import load_fusion_card
    from device.matching.decision import threshold_for
    from device.minutiae.check import MATCHERS

    card = load_fusion_card(card_path, MATCHERS)
    weights = dict(zip(MATCHERS, card.weight_vector_for(MATCHERS), strict=True))
    if weights["fingerprint"] != 0.0:
        raise SystemExit(f"{card_path}: the embedding has weight {weights['fingerprint']}; this tool scores the "
                         "minutiae matcher alone")
    norm = {s.name: s for s in card.matchers}["minutiae"].normalizer
    if norm.method != "zscore":
        raise SystemExit(f"{card_path}: expected z-score normalization, got {norm.method}")
    fused = threshold_for(card.thresholds, level)
    return float(norm.params["mu"] + fused / weights["minutiae"] * norm.params["sigma"])


def extract_all(images: list[np.ndarray], dpi: int) -> tuple[list, np.ndarray, list[str]]:
    """Minutiae (None when the extractor refuses), quality score (-1 when refused) and weakest factor per image."""
    from device.fingerprint.errors import FingerprintError
    from device.fingerprint.extract import extract_with_quality

    found, scores, weakest = [], [], []
    for grey in images:
        try:
            m, q = extract_with_quality(grey, dpi)
        except FingerprintError as exc:
            found.append(None)
            scores.append(-1.0)
            weakest.append(exc.reason)
            continue
        found.append(m)
        scores.append(q.score)
        weakest.append(q.weakest)
    return found, np.array(scores), weakest


def scorer(found: list):
    from device.fingerprint import consolidate, mcc

    cyl = [None if m is None else mcc.cylinders(m) for m in found]

    def score(i: int, j: int) -> float:
        a, b = cyl[i], cyl[j]
        return 0.0 if a is None or b is None else float(consolidate.score(a, b, mcc.local_similarity(a, b)))

    return score


def reject_curve(genuine: np.ndarray, pair_quality: np.ndarray, threshold: np.ndarray | float,
                 fractions=FRACTIONS) -> list[float]:
    """FNMR after dropping the lowest-quality ``fraction`` of genuine pairs (stable order: ties keep pair order)."""
    t = np.broadcast_to(np.asarray(threshold, dtype=np.float64), genuine.shape)
    order = np.argsort(pair_quality, kind="stable")
    out = []
    for f in fractions:
        keep = order[int(round(f * len(order))):]
        out.append(float(np.mean(genuine[keep] < t[keep])))
    return out


def run_set(dataset: str, db: str, data: Path, t_card: float) -> dict:
    from device.fingerprint.quality import ENROL_MIN, VERIFY_MIN
    from training import metrics

    paths, labels, imps = set_images(data, dataset, db)
    dpi = dpi_of(dataset, db)
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
    found, q, weakest = extract_all(images, dpi)
    score = scorer(found)
    gen, fvc_imp = fvc_pairs(labels, imps)
    if len(paths) <= MAX_ALL_PAIRS_IMAGES:
        imp = [(i, j) for i, j in combinations(range(len(paths)), 2) if labels[i] != labels[j]]
    else:
        imp = fvc_imp
    g = np.array([score(i, j) for i, j in gen])
    im = np.array([score(i, j) for i, j in imp])
    t_eer = metrics.eer(g, im).threshold
    gi = np.array(gen)
    pair_q = np.minimum(q[gi[:, 0]], q[gi[:, 1]])
    first, second = gi[:, 0], gi[:, 1]  # the lower impression plays the enrolled capture
    verify_ok = np.minimum(q[first], q[second]) >= VERIFY_MIN
    enrol_ok = (q[first] >= ENROL_MIN) & (q[second] >= VERIFY_MIN)
    return {
        "set": f"{dataset.split('/')[1]} {db}", "images": len(paths), "genuine": len(gen), "impostor": len(imp),
        "extract_failures": int(sum(m is None for m in found)),
        "t_card": t_card, "t_eer": float(t_eer),
        "curve_card": reject_curve(g, pair_q, t_card), "curve_eer": reject_curve(g, pair_q, t_eer),
        "below_verify": int(np.sum(q < VERIFY_MIN)), "below_enrol": int(np.sum(q < ENROL_MIN)),
        "fnmr_card": float(np.mean(g < t_card)),
        "fnmr_card_verify_gate": float(np.mean(g[verify_ok] < t_card)), "pairs_verify_gate": int(verify_ok.sum()),
        "fnmr_card_both_gates": float(np.mean(g[enrol_ok] < t_card)), "pairs_both_gates": int(enrol_ok.sum()),
        "weakest_below_verify": _counts([w for w, s in zip(weakest, q, strict=True) if s < VERIFY_MIN]),
        "quality": q.tolist(), "genuine_scores": g.tolist(), "pairs": [list(p) for p in gen],
    }


def _counts(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in items:
        out[k] = out.get(k, 0) + 1
    return out


def pooled(rows: list[dict]) -> dict:
    """The curve over every set's genuine pairs together (each pair judged at its own set's threshold)."""
    g = np.concatenate([np.asarray(r["genuine_scores"]) for r in rows])
    qs = [np.asarray(r["quality"]) for r in rows]
    pq = np.concatenate([np.minimum(q[np.asarray(r["pairs"])[:, 0]], q[np.asarray(r["pairs"])[:, 1]])
                         for q, r in zip(qs, rows, strict=True)])
    t_eer = np.concatenate([np.full(len(r["genuine_scores"]), r["t_eer"]) for r in rows])
    return {"curve_card": reject_curve(g, pq, rows[0]["t_card"]), "curve_eer": reject_curve(g, pq, t_eer),
            "genuine": int(g.size)}


def synthetic(n: int, impressions: int, seed: int) -> dict:
    """Quality of the demo's synthetic R307 prints: how many each gate would refuse (they should pass)."""
    from device.fingerprint.quality import ENROL_MIN, VERIFY_MIN
    from training.synth.dataset import identity_seed
    from training.synth.fingerprint import render_impression

    images = [render_impression(identity_seed(seed, i, "fingerprint"), k, "r307")
              for i in range(n) for k in range(impressions)]
    _, q, weakest = extract_all(images, 500)
    return {"images": len(images), "below_verify": int(np.sum(q < VERIFY_MIN)),
            "below_enrol": int(np.sum(q < ENROL_MIN)), "extract_failures": int(np.sum(q < 0)),
            "percentiles_1_5_50": np.percentile(q, [1, 5, 50]).round(3).tolist(),
            "weakest_below_enrol": _counts([w for w, s in zip(weakest, q, strict=True) if s < ENROL_MIN])}


def _pct(xs: list[float]) -> str:
    return " / ".join(f"{100 * x:4.1f}" for x in xs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="all", help="comma-separated like fvc2000/DB1_B, or all (the six FVC sets)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--synthetic", type=int, default=0, help="also: this many synthetic R307 identities")
    ap.add_argument("--impressions", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    from device.fingerprint.quality import ENROL_MIN, VERIFY_MIN

    out: dict = {"verify_min": VERIFY_MIN, "enrol_min": ENROL_MIN}
    if args.synthetic:
        syn = synthetic(args.synthetic, args.impressions, args.seed)
        out["synthetic"] = syn
        print(f"synthetic R307 ({syn['images']} images): below verify gate {syn['below_verify']}, below enrol gate "
              f"{syn['below_enrol']}, extraction refused {syn['extract_failures']}, quality 1st/5th/50th pct. "
              f"{syn['percentiles_1_5_50']}")
    if args.sets != "none":
        sets = SETS if args.sets == "all" else [("fingerprint/" + s.split("/")[0], s.split("/")[1])
                                                for s in args.sets.split(",")]
        t_card = card_threshold()
        rows = []
        print(f"FNMR in % after dropping the lowest-quality {', '.join(f'{int(100 * f)}' for f in FRACTIONS)} % of "
              f"genuine pairs; card 'balanced' threshold {t_card:.4f} (raw), and each set's EER threshold")
        for dataset, db in sets:
            r = run_set(dataset, db, args.data, t_card)
            rows.append(r)
            print(f"{r['set']:<22} card {_pct(r['curve_card'])}   EER {_pct(r['curve_eer'])}   "
                  f"({r['genuine']} genuine / {r['impostor']} impostor pairs; {r['images']} images)")
            print(f"{'':22} gates: FTA verify {r['below_verify']}/{r['images']}, enrol {r['below_enrol']}/"
                  f"{r['images']} {r['weakest_below_verify']}; FNMR at card {100 * r['fnmr_card']:.1f} % -> "
                  f"{100 * r['fnmr_card_verify_gate']:.1f} % (verify gate, {r['pairs_verify_gate']} pairs) -> "
                  f"{100 * r['fnmr_card_both_gates']:.1f} % (enrol + verify gates, {r['pairs_both_gates']} pairs)")
        p = pooled(rows)
        print(f"{'pooled':<22} card {_pct(p['curve_card'])}   EER {_pct(p['curve_eer'])}   ({p['genuine']} genuine)")
        n = sum(r["images"] for r in rows)
        fnmr = np.mean([r["fnmr_card"] for r in rows])
        print(f"{'all sets':<22} FTA verify {sum(r['below_verify'] for r in rows)}/{n}, enrol "
              f"{sum(r['below_enrol'] for r in rows)}/{n}; mean FNMR at card {100 * fnmr:.1f} % -> "
              f"{100 * np.mean([r['fnmr_card_verify_gate'] for r in rows]):.1f} % (verify gate) -> "
              f"{100 * np.mean([r['fnmr_card_both_gates'] for r in rows]):.1f} % (both)")
        out["sets"], out["pooled"] = rows, p
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
