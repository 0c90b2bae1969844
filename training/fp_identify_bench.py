"""Identification (1:N) on real prints, as the device does it: the embedding shortlists, our matcher decides.

The device (``device.pipeline.Authenticator.identify`` with minutiae on) ranks enrolled users by their best
embedding cosine and compares the probe's minutiae with every capture of every user in a small gallery, or with
the best-cosine capture of each of the ``SHORTLIST`` best users in a large one (``shortlist_plan``), and takes the
best fused score, accepted at the card's threshold. This tool measures, on real sets:

- shortlist recall at k: the share of probes whose true finger is among the k users with the best cosines;
- rank-1 identification rate: the best-scoring user of the shortlist is the true finger (closed set), and the
  share identified *and* accepted at ``balanced`` (what opens the door), with every other user as an impostor:
  wrongly accepted probes are counted too;
- the same when every enrolled user is scored (no shortlist).

Protocol: every finger of the chosen sets is enrolled with its first ``--enrol`` impressions (1-2) and probed with
each of the others. Sets are pooled into one gallery (FVC: 5 x 10 fingers, FVC2000 DB2_B left out because its
fingers are DB1_B's; PolyU HRF: 148 fingers).

    python -m training.fp_identify_bench                                 # five FVC DB_B sets, 50 fingers
    python -m training.fp_identify_bench --sets polyu_hrf_500dpi/all     # 148 fingers
    python -m training.fp_identify_bench --sets all,polyu_hrf_500dpi/all # 198 fingers in one gallery
    python -m training.fp_identify_bench --sets all,polyu_hrf_500dpi/all --enrol 5 --shortlists 8,40x1
                                                                         # 5 captures each, as the device enrols

Evaluation only (nothing is fitted). Needs ../shared/data and the shipped models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from training.fp_extract_bench import DATA, SETS, dpi_of, set_images

MODELS = Path(__file__).resolve().parents[1] / "models"
KS = (1, 2, 4, 8, 16, 32)
# FVC2000 DB2_B's fingers are DB1_B's (same numbers, another sensor: 82 of their 120 cross-set probes matched
# their namesake at `balanced`), so one gallery holds only one of them: "all" means the other five sets.
SAME_FINGERS = {("fingerprint/fvc2000", "DB2_B"): ("fingerprint/fvc2000", "DB1_B")}


def _sets(spec: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for part in spec.split(","):
        if part == "all":
            out += [s for s in SETS if s not in SAME_FINGERS]
        else:
            out.append(("fingerprint/" + part.split("/")[0], part.split("/")[1]))
    clash = [s for s in out if SAME_FINGERS.get(s) in out]
    if clash:
        raise SystemExit(f"{clash[0][1]} holds the same fingers as {SAME_FINGERS[clash[0]][1]}: pool only one")
    return out


def load(data: Path, sets: list[tuple[str, str]], enrol: int) -> list[dict]:
    """One row per image: grey, dpi, finger label (set + identity), whether it is an enrolment capture."""
    rows = []
    for dataset, db in sets:
        paths, labels, imps = set_images(data, dataset, db)
        order: dict[str, int] = {}
        for p, label, _ in zip(paths, labels, imps, strict=True):  # sorted by identity, then impression
            k = order.get(label, 0)
            order[label] = k + 1
            rows.append({"path": str(p), "dpi": dpi_of(dataset, db), "finger": f"{dataset} {db} {label}",
                         "enrol": k < enrol})
    return rows


def features(rows: list[dict]) -> None:
    """The device's embedding (None when preprocessing refuses the capture) and our template (None when refused)."""
    from device.config import InferenceConfig
    from device.fingerprint.matcher import BiolockMatcher
    from device.inference import build_embedder
    from device.inference.card import load_card
    from device.minutiae.base import MinutiaeError
    from device.preprocess import preprocess

    card = load_card(MODELS / "fingerprint.json")
    matchers: dict[int, BiolockMatcher] = {}
    with build_embedder(InferenceConfig(num_threads=1), card) as embedder:
        for r in rows:
            grey = cv2.imread(r["path"], cv2.IMREAD_GRAYSCALE)
            prep = preprocess(grey, "fingerprint", card.input_size, card.preprocessing)
            r["vector"] = embedder.embed(prep.image) if prep.quality.ok else None
            m = matchers.setdefault(r["dpi"], BiolockMatcher(r["dpi"]))
            try:
                r["template"] = m.extract(grey)
            except MinutiaeError:
                r["template"] = None
        r_model = embedder.model_id
    for r in rows:
        r["model_id"] = r_model


def evaluate(rows: list[dict], shortlists: tuple[str, ...], score_all: bool) -> dict:
    from device.fingerprint.matcher import BiolockMatcher
    from device.matching import identify
    from device.minutiae.check import load_minutiae_check

    check = load_minutiae_check("biolock", MODELS / "fingerprint_minutiae.json", rows[0]["model_id"])
    threshold = check.threshold("balanced")
    matcher = BiolockMatcher()  # comparison does not depend on dpi (templates carry it)
    gallery = [r for r in rows if r["enrol"] and r["vector"] is not None and r["template"] is not None]
    users = [r["finger"] for r in gallery]
    matrix = np.stack([r["vector"] for r in gallery]).astype(np.float32)
    templates: dict[str, list[bytes]] = {}
    for r in gallery:
        templates.setdefault(r["finger"], []).append(r["template"])
    enrolled = sorted(templates)
    probes = [r for r in rows if not r["enrol"]]
    usable = [r for r in probes if r["vector"] is not None and r["template"] is not None and r["finger"] in templates]
    vectors: dict[str, list[np.ndarray]] = {}
    for r in gallery:
        vectors.setdefault(r["finger"], []).append(r["vector"])
    cache: dict[tuple[int, str, bytes], float] = {}

    def fused(p: int, user: str, captures: int | None = None) -> float:
        """The user's best fused score over their ``captures`` captures with the best cosines (None: all)."""
        order = np.argsort(-(np.stack(vectors[user]) @ usable[p]["vector"]), kind="stable")[:captures]
        best = -np.inf
        for i in order:
            key = (p, user, templates[user][i])
            if key not in cache:  # the card gives the embedding weight 0
                cache[key] = float(check.fused(0.0, matcher.compare(usable[p]["template"], templates[user][i]))[0])
            best = max(best, cache[key])
        return best

    ranks = []
    for r in usable:
        ranked = [c.user for c in identify(r["vector"], matrix, users, top=len(enrolled))]
        ranks.append(ranked.index(r["finger"]) + 1)
    ranks_a = np.array(ranks)
    out = {"fingers": len(enrolled), "gallery_captures": len(gallery), "probes": len(probes),
           "probes_scored": len(usable), "threshold_balanced": threshold,
           "recall": {str(k): float(np.mean(ranks_a <= k)) for k in KS}, "modes": {}}
    modes = [(mode, *_mode(mode, len(enrolled))) for mode in shortlists] + (
        [("all", len(enrolled), None)] if score_all else [])
    per_user = len(gallery) / len(enrolled)
    for name, k, captures in modes:
        right = accepted_right = accepted_wrong = 0
        for p, r in enumerate(usable):
            short = [c.user for c in identify(r["vector"], matrix, users, top=k)]
            scored = [(fused(p, u, captures), u) for u in short]
            best_score, best_user = max(scored, key=lambda s: (s[0], s[1]))
            right += best_user == r["finger"]
            if best_score >= threshold:
                accepted_right += best_user == r["finger"]
                accepted_wrong += best_user != r["finger"]
        n = len(usable)
        each = per_user if captures is None else min(captures, per_user)
        out["modes"][name] = {"rank1": right / n, "identified_accepted": accepted_right / n,
                              "wrongly_accepted": accepted_wrong,
                              "comparisons_per_probe": round(each * min(k, len(enrolled)), 1)}
    return out


def _mode(mode: str, fingers: int) -> tuple[int, int | None]:
    """"8": the 8 best users, all their captures; "40x1": the 40 best users, each through its best-cosine capture."""
    users, _, captures = mode.partition("x")
    return min(int(users), fingers), int(captures) if captures else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="all", help="comma-separated: all (five FVC DB_B sets), fvc2000/DB1_B, "
                                                  "polyu_hrf_500dpi/all")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--enrol", type=int, default=2, help="enrolment impressions per finger (the first ones)")
    ap.add_argument("--shortlists", default="8,16,32",
                    help="comma-separated: N (the N best users, every capture) or NxC (their C best-cosine captures)")
    ap.add_argument("--all", action="store_true", help="also score every enrolled user (no shortlist)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    rows = load(args.data, _sets(args.sets), args.enrol)
    features(rows)
    res = evaluate(rows, tuple(args.shortlists.split(",")), args.all)
    print(f"{res['fingers']} fingers enrolled ({res['gallery_captures']} captures), {res['probes']} probes "
          f"({res['probes_scored']} usable: the rest refused by preprocessing or extraction)")
    print("shortlist recall: " + ", ".join(f"@{k} {100 * v:.1f} %" for k, v in res["recall"].items()))
    for name, m in res["modes"].items():
        print(f"shortlist {name:>4}: rank-1 {100 * m['rank1']:.1f} %, identified and accepted at balanced "
              f"{100 * m['identified_accepted']:.1f} %, wrong user accepted {m['wrongly_accepted']} "
              f"({m['comparisons_per_probe']} comparisons per probe)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
