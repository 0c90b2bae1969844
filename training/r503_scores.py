"""Per-touch scores of small-sensor enrolment on synthetic R503 touches: where the decision thresholds come from.

    OMP_NUM_THREADS=1 python -m training.r503_scores --fingers 60 --strangers 300 --out /tmp/r503_scores.json
    python -m training.r503_scores --score-real ../shared/data/fingerprint/polyu_hrf_500dpi --crop 189x189 \
        --out /tmp/polyu189.json     # the R503's window at 500 dpi (--crop 128x128: a smaller sensor's)
    python -m training.r503_scores --from-scores /tmp/r503_scores.json --card models/fingerprint_small_sensor.json \
        --held-out fingerprint/polyu_hrf_500dpi@189x189=/tmp/polyu189.json --window 189x189

Protocol (docs/partial-prints.md, "Decision thresholds"): synthetic fingers of the ``capacitive192`` profile
(``training.synth``, seed ``--seed``), reduced to the 4 bits per pixel an R503 uploads (exactly what the emulated
R503 delivers to the driver). Each of ``--fingers`` fingers is enrolled with ``SmallSensorEnrolment``
(``--placements``, default 10) from its impressions 0, 1, 2, ... until done; probes are impressions 100.. of the
same finger (genuine, ``--genuine`` each). Impostors: every stranger (``--strangers`` other identities, one touch
each) against every enrolled finger, plus every genuine probe against every other enrolled finger. The score is
``placements.verify_score`` (the device's decision score). Prints the counts and, per integer threshold, false
matches, FMR, its 95 % upper bound and FNMR; ``--out`` writes every score as JSON.

Synthetic only: nothing real is read. The impostor count bounds what can be claimed (about 3/claim pairs with no
false match for a 95 % bound at the claim).

``--card`` writes the small-sensor card the device decides with (``device.small_sensor``): thresholds fitted per
level on these scores by the same rule as every other card (``device.calibration.fit``: the measured FMR at or below
the claim and its 95 % bound too where the count can show it; rounded up to whole matches, which changes no
decision on integer scores) and the calibration block measured there. ``--held-out NAME=FILE`` (a JSON file with
``genuine`` and ``impostor`` score lists, e.g. real partial prints scored the same way) is scored at the fitted
thresholds and never moves them; a held-out set that breaks a claim withdraws that level.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from device.calibration.bounds import clopper_pearson_upper
from device.fingerprint.placements import SmallSensorEnrolment, decode_placements, verify_score
from device.minutiae.base import MinutiaeError
from device.minutiae.partial_backend import PartialMatcher


def r503_touch(seed: int, identity: int, impression: int) -> np.ndarray:
    """One synthetic touch as the R503 uploads it: capacitive192, top 4 bits kept, expanded as n * 17."""
    from training.synth.dataset import identity_seed
    from training.synth.fingerprint import render_impression

    img = render_impression(identity_seed(seed, identity, "fingerprint"), impression, "capacitive192")
    return ((img >> 4) * 17).astype(np.uint8)


def write_card(path: str, genuine: list[float], impostor: list[float], set_name: str,
               held_out: dict[str, tuple[list[float], list[float]]], placements: int,
               model_id: str | None = None, budget: int | None = None,
               window: tuple[int, int] | None = None) -> dict:
    """The small-sensor card: thresholds per level (whole matches) and their calibration block."""
    import math

    from device.atomicfile import write_json_atomic
    from device.calibration.fit import fit_levels, measure
    from device.fingerprint.placements import BUDGET
    from device.small_sensor import CARD_FORMAT, MODEL_ID

    sets = {set_name: (np.asarray(genuine, np.float64), np.asarray(impostor, np.float64))}
    fitted = {k: float(math.ceil(v)) for k, v in fit_levels(sets).items()}  # integer scores: same decisions
    held = {k: (np.asarray(g, np.float64), np.asarray(i, np.float64)) for k, (g, i) in held_out.items()}
    calibration = measure(sets, fitted, "small-sensor enrolment, verify_score per touch (training/r503_scores.py)",
                          held)
    model_id = model_id or MODEL_ID  # the scores' own (saved with them): never the code's of the day
    card = {"format": CARD_FORMAT, "matcher": model_id.split("+")[0], "model_id": model_id, "placements": placements,
            "budget": budget or BUDGET, "score": "consistent matches of a touch with its best stored placement",
            "thresholds": fitted, "calibration": calibration.to_dict(),
            "made_by": "python -m training.r503_scores (docs/partial-prints.md, Decision thresholds)"}
    if window is not None:  # the sensor size the held-out real windows stand for: smaller touches are not covered
        card["window"] = [int(window[0]), int(window[1])]
    write_json_atomic(Path(path), card, indent=1)
    return card


def score_real(root: str, crop: str, out: str, fingers: int = 0) -> dict:
    """Per-touch scores of real partial prints (``FFF/FFF_S_I.png``, e.g. polyu_hrf_500dpi) by
    ``training.partial_enrol_sim``'s protocol (10 placements from session 1, session-2 touches, 20 other fingers
    per touch, seed 7), each scored with the device's ``verify_score``; written as a held-out score file."""
    from device.fingerprint.placements import BUDGET, verify_score
    from training import partial_enrol_sim as sim

    scores: list[float] = []

    def record(template, touch) -> float:
        scores.append(verify_score(template, touch))
        return scores[-1]

    args = argparse.Namespace(root=root, crop=crop, placements=10, budget=BUDGET, enrol_seeds=[18, 19, 20],
                              impostors=20, pair_seed=7, fingers=fingers, touch_keypoints=400,
                              cache=str(Path(tempfile.gettempdir()) / "biolock-partial-sim"))
    summary = sim.run(args, score=record)
    group = 1 + args.impostors  # run() scores each touch against its own finger, then 20 others
    if len(scores) % group:
        raise SystemExit("fewer than 21 fingers: every touch must have 20 impostor comparisons")
    genuine = scores[0::group]
    impostor = [x for k, x in enumerate(scores) if k % group]
    with open(out, "w") as fh:
        json.dump({"summary": summary, "genuine": genuine, "impostor": impostor}, fh)
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fingers", type=int, default=None, help="synthetic fingers (default 40); --score-real: the "
                    "first N fingers only (default all)")
    ap.add_argument("--strangers", type=int, default=60)
    ap.add_argument("--genuine", type=int, default=5)
    ap.add_argument("--placements", type=int, default=10)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--budget", type=int, default=None, help="template bytes of all placements (default 16 KB)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--from-scores", default=None, help="build --card from the scores an earlier --out wrote")
    ap.add_argument("--card", default=None, help="write the small-sensor card here")
    ap.add_argument("--held-out", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--score-real", default=None, metavar="ROOT", help="score real partial prints (evaluation "
                    "only) into --out as a held-out set")
    ap.add_argument("--crop", default="128x128", help="--score-real: window cut from each print")
    ap.add_argument("--window", default=None, metavar="HxW", help="--card: the smallest touch (px at 500 dpi) the "
                    "card covers: the size its held-out real windows were cut at")
    args = ap.parse_args(argv)
    if args.score_real:
        return score_real(args.score_real, args.crop, args.out, args.fingers or 0)
    args.fingers = args.fingers or 40
    if args.from_scores:
        with open(args.from_scores) as fh:
            saved = json.load(fh)
        held = {}
        for spec in args.held_out:
            name, _, file = spec.partition("=")
            with open(file) as fh:
                h = json.load(fh)
            held[name] = (h["genuine"], h["impostor"])
        name = f"synthetic:r503-capacitive192-seed{saved.get('seed', args.seed)}"
        card = write_card(args.card, saved["genuine"], saved["impostor"], name, held,
                          int(saved.get("placements", args.placements)), saved["model_id"], saved.get("budget"),
                          tuple(int(v) for v in args.window.lower().split("x")) if args.window else None)
        print(json.dumps({"thresholds": card["thresholds"], "supported": {
            k: v["supported"] for k, v in card["calibration"]["levels"].items()}}))
        return card
    t0 = time.perf_counter()
    m = PartialMatcher(dpi=508)
    window = (round(192 * 500 / 508),) * 2
    templates, offered, stored, refused, probes = [], [], [], 0, []
    for f in range(args.fingers):
        e = SmallSensorEnrolment(placements=args.placements, **({"budget": args.budget} if args.budget else {}))
        imp = 0
        while not e.done and imp < 4 * args.placements:
            try:
                fb = e.add(m.keypoints(r503_touch(args.seed, f, imp)), window)
                refused += not fb.accepted
            except MinutiaeError:
                refused += 1
            imp += 1
        offered.append(imp)
        stored.append(len(e.stored))
        templates.append(decode_placements(e.template()) if e.stored else [])
        probes.append([m.keypoints(r503_touch(args.seed, f, 100 + g)) for g in range(args.genuine)])
    strangers = [m.keypoints(r503_touch(args.seed, args.fingers + s, 0)) for s in range(args.strangers)]
    genuine, impostor = [], []
    for f, placements in enumerate(templates):
        genuine += [verify_score(placements, p) for p in probes[f]]
        impostor += [verify_score(placements, s) for s in strangers]
        for g, others in enumerate(probes):
            if g != f:
                impostor += [verify_score(placements, p) for p in others]
    gen, imp = np.array(genuine), np.array(impostor)
    rows = []
    for t in range(4, 41):
        fm = int((imp >= t).sum())
        rows.append({"threshold": t, "false_matches": fm, "fmr": fm / imp.size,
                     "fmr_upper95": clopper_pearson_upper(fm, int(imp.size)), "fnmr": float((gen < t).mean())})
    from device.fingerprint.placements import BUDGET
    from device.small_sensor import MODEL_ID

    report = {"model_id": MODEL_ID, "budget": args.budget or BUDGET, "fingers": args.fingers, "seed": args.seed,
              "placements": args.placements,
              "placements_mean": float(np.mean(stored)),
              "touches_offered_mean": float(np.mean(offered)), "touches_refused": refused,
              "genuine_pairs": int(gen.size), "impostor_pairs": int(imp.size), "impostor_max": float(imp.max()),
              "seconds": round(time.perf_counter() - t0, 1), "thresholds": rows}
    print(json.dumps({k: v for k, v in report.items() if k != "thresholds"}))
    for r in rows:
        print(f"t={r['threshold']:3d}  false matches {r['false_matches']:5d}  FMR {r['fmr']:.2e} "
              f"(95 % bound {r['fmr_upper95']:.2e})  FNMR {100 * r['fnmr']:5.1f} %")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({**report, "genuine": genuine, "impostor": impostor}, fh)
    if args.card:
        write_card(args.card, genuine, impostor, f"synthetic:r503-capacitive192-seed{args.seed}", {},
                   args.placements, MODEL_ID, args.budget)
    return report


if __name__ == "__main__":
    main()
