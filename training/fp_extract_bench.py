"""Judge a minutiae extractor by the matching EER it gives on the real FVC sets, with bozorth3 as a fixed yardstick.

Why a yardstick: extraction quality is what decides fingerprint accuracy, and a fixed matcher (NBIS bozorth3, through
nbis-py) separates "better minutiae" from "better matcher". Both extractors' minutiae go through the same bozorth3,
so the EER difference is the extractors'. Protocol: FVC (``training.protocol.fvc_pairs``: 280 genuine / 45 impostor
pairs on a DB_B set) and every cross-identity pair as impostors (2,880 on a DB_B set).

    python -m training.fp_extract_bench --extractor ours      # biolock's device.fingerprint.extract
    python -m training.fp_extract_bench --extractor mindtct   # NBIS mindtct
    python -m training.fp_extract_bench --matcher biolock     # scored by biolock's matcher instead of bozorth3

Needs nbis-py (the ``minutiae`` extra) and ../shared/data; it is a measurement tool, not part of the device path.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

from training.protocol import fvc_pairs, summarize

DATA = Path("/work/shared/data")
# Sensor resolution of each FVC DB_B set (FVC2000/FVC2002 reports); all others are 500 dpi.
DPI = {("fingerprint/fvc2002", "DB2"): 569}
MAX_ALL_PAIRS_IMAGES = 200  # above this, "every cross-identity pair" is not scored
SETS = [(f"fingerprint/fvc{year}", f"DB{i}_B") for year in (2000, 2002) for i in (1, 2, 3)]


def set_images(data: Path, dataset: str, db: str) -> tuple[list[Path], list[str], list[str]]:
    """Paths, identity labels and impression numbers of one DB_B set, from the manifest."""
    rows = []
    with open(data / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["dataset"] == dataset and (db == "all" or row["relpath"].startswith(db + "/")):
                rows.append(row)
    rows.sort(key=lambda r: (r["identity"], int(r["impression"]) if r["impression"].isdigit() else 0))
    return [data / dataset / r["relpath"] for r in rows], [r["identity"] for r in rows], [r["impression"] for r in rows]


def dpi_of(dataset: str, db: str) -> int:
    return DPI.get((dataset, db.split("_")[0]), 500)


def nbis_py_flavour(iso: bytes) -> bytes:
    """nbis-py 0.1.3 reads (and writes) ISO 19794-2:2005 without the header's 'finger views' and 'reserved' bytes."""
    return iso[:8] + (len(iso) - 2).to_bytes(4, "big") + iso[12:22] + iso[24:]


class Yardstick:
    """nbis-py: mindtct extraction and bozorth3 comparison of ISO templates."""

    def __init__(self) -> None:
        import nbis

        self.ex = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None))

    def mindtct(self, grey: np.ndarray) -> tuple[bytes, int]:
        ok, png = cv2.imencode(".png", grey)
        found = self.ex.extract_minutiae(png.tobytes())
        return bytes(found.to_iso_19794_2_2005()), len(found.get())

    def load(self, template: bytes):
        return self.ex.load_iso_19794_2_2005(template)


def ours(grey: np.ndarray, dpi: int):
    """Our minutiae, or None when the extractor refuses the capture (a failure to enrol: scored 0)."""
    from device.fingerprint.errors import FingerprintError
    from device.fingerprint.extract import extract_minutiae

    try:
        return extract_minutiae(grey, dpi)
    except FingerprintError:
        return None


def run_set(yard: Yardstick, extractor: str, dataset: str, db: str, data: Path = DATA,
            matcher: str = "bozorth3") -> dict:
    """EERs of one DB_B set for ``extractor`` (ours, mindtct) scored by ``matcher`` (bozorth3, biolock)."""
    from device.fingerprint.iso import to_iso19794_2
    from device.fingerprint.template import from_iso19794_2

    paths, labels, imps = set_images(data, dataset, db)
    dpi = dpi_of(dataset, db)
    templates, counts, times = [], [], []
    for p in paths:
        grey = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        t0 = time.process_time()
        if extractor == "mindtct":
            iso, n = yard.mindtct(grey)
        else:
            m = ours(grey, dpi)
            n = len(m) if m is not None else 0
        times.append(time.process_time() - t0)
        if matcher == "bozorth3":
            tpl = yard.load(iso if extractor == "mindtct" else nbis_py_flavour(to_iso19794_2(m))) \
                if extractor == "mindtct" or m is not None else None
        else:
            tpl = from_iso19794_2(iso) if extractor == "mindtct" else m
        templates.append(tpl)
        counts.append(n)

    if matcher == "biolock":
        from device.fingerprint import consolidate, mcc

        def cylinders(m):
            try:
                return mcc.cylinders(m)
            except ValueError:  # a set the matcher cannot describe: scored as a failure to enrol
                return None

        templates = [None if m is None else cylinders(m) for m in templates]

    def score(i: int, j: int) -> float:
        a, b = templates[i], templates[j]
        if a is None or b is None:
            return 0.0
        if matcher == "bozorth3":
            return float(a.compare(b))
        return float(consolidate.score(a, b, mcc.local_similarity(a, b)))

    gen, imp = fvc_pairs(labels, imps)
    g = np.array([score(i, j) for i, j in gen])
    fvc = summarize(g, np.array([score(i, j) for i, j in imp]))
    if len(paths) <= MAX_ALL_PAIRS_IMAGES:
        cross = [(i, j) for i, j in combinations(range(len(paths)), 2) if labels[i] != labels[j]]
        allx = summarize(g, np.array([score(i, j) for i, j in cross]))
    else:  # e.g. PolyU's 1,480 images: about a million pairs; the FVC protocol's impostors only
        allx = {"eer": float("nan"), "fmr1000": fvc["fmr1000"], "impostor_pairs": 0}
    return {"set": f"{dataset.split('/')[1]} {db}", "dpi": dpi, "eer_fvc": fvc["eer"], "eer_all": allx["eer"],
            "fnmr_at_fmr1000_all": allx["fmr1000"], "genuine": fvc["genuine_pairs"],
            "impostor_fvc": fvc["impostor_pairs"], "impostor_all": allx["impostor_pairs"],
            "failures": int(sum(t is None for t in templates)), "mean_minutiae": float(np.mean(counts)),
            "median_cpu_ms": 1000 * float(np.median(times))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extractor", choices=["ours", "mindtct"], default="ours")
    ap.add_argument("--matcher", choices=["bozorth3", "biolock"], default="bozorth3")
    ap.add_argument("--sets", default="all",
                    help="comma-separated like fvc2000/DB1_B or polyu_hrf_500dpi/all, or all (the six FVC sets)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    sets = SETS if args.sets == "all" else [("fingerprint/" + s.split("/")[0], s.split("/")[1])
                                            for s in args.sets.split(",")]
    yard = Yardstick() if args.matcher == "bozorth3" or args.extractor == "mindtct" else None
    rows = []
    for dataset, db in sets:
        row = run_set(yard, args.extractor, dataset, db, args.data, args.matcher)
        rows.append(row)
        print(f"{row['set']:<14} EER fvc {100 * row['eer_fvc']:5.2f} %  all {100 * row['eer_all']:5.2f} %  "
              f"FNMR@FMR1e-3 {100 * (row['fnmr_at_fmr1000_all'] or 0):5.1f} %  ({row['genuine']}/"
              f"{row['impostor_fvc']}/{row['impostor_all']})  minutiae {row['mean_minutiae']:5.1f}  "
              f"fail {row['failures']}  {row['median_cpu_ms']:5.1f} ms CPU", flush=True)
    print(f"mean EER fvc {100 * np.mean([r['eer_fvc'] for r in rows]):.2f} %  "
          f"all {100 * np.mean([r['eer_all'] for r in rows]):.2f} %")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
