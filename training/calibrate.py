"""Calibrate the synthetic generators against real sensor sets with training-free yardsticks.

For each real set (each sensor separately) and for synthetic sets of the matching profile (one per seed), compute:
the yardstick's FVC-protocol EER with its pair counts (NBIS mindtct + bozorth3 via nbis-py for fingerprints; Miura
maximum curvature + Miura matching for finger veins) and image statistics (ridge period, foreground area, grey
mean and std). The result is a markdown + JSON table and a contact sheet of real vs synthetic samples.

Real-set results are cached in ``out/cache/`` (keyed by set and yardstick), since the real sets do not change
while the generators are tuned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from device.errors import DatasetError
from training.synth.stats import fingerprint_stats, mean_stats, vein_stats

YARDSTICKS = {"fingerprint": "NBIS (nbis-py 0.1.3)", "vein": "Miura max. curvature + Miura match"}
DEFAULTS = {"fingerprint": ("r307", 30, 8), "vein": ("roi", 100, 6)}
SINGLE_SET_TOLERANCE = 0.5  # with one real set, "inside the range" means within +-50 % of its EER


@dataclass
class SetImages:
    """One evaluation set: name, kind (real/synthetic), images as paths, identities and impressions."""

    name: str
    kind: str
    paths: list[Path]
    labels: list[str]
    impressions: list[str]


@dataclass
class CalibrationResult:
    rows: list[dict]
    markdown: str
    markdown_path: Path
    json_path: Path
    sheet_path: Path


def real_sets(real: Path, modality: str, max_identities: int | None = None) -> list[SetImages]:
    """The real sets of ``modality`` in ``real``/manifest.csv, one per sensor (FVC DBn_B are separate)."""
    from training.data.loaders import load_dataset, natural_key

    manifest = real / "manifest.csv"
    if not manifest.is_file():
        raise DatasetError(f"{real}: no manifest.csv (expected the real sets, e.g. ../shared/data)")
    groups: dict[str, list] = {}
    for s in load_dataset(manifest).samples:
        if not s.dataset.startswith(modality):
            continue
        sub = s.identity.rsplit("/", 1)[0] if "/" in s.identity else ""
        groups.setdefault(f"{s.dataset}/{sub}".rstrip("/"), []).append(s)
    if not groups:
        raise DatasetError(f"{manifest}: no {modality} sets found")
    out = []
    for name in sorted(groups):
        samples = sorted(groups[name], key=lambda s: (natural_key(s.identity), natural_key(s.impression)))
        if max_identities:
            keep = sorted({s.identity for s in samples}, key=natural_key)[:max_identities]
            samples = [s for s in samples if s.identity in set(keep)]
        out.append(SetImages(name, "real", [s.path for s in samples], [s.identity for s in samples],
                             [s.impression for s in samples]))
    return out


def synthetic_set(manifest: Path, name: str) -> SetImages:
    from training.data.loaders import load_dataset

    samples = load_dataset(manifest).samples
    return SetImages(name, "synthetic", [s.path for s in samples], [s.identity for s in samples],
                     [s.impression for s in samples])


def load_grey(path: Path, modality: str) -> np.ndarray:
    """Grey uint8 image; vein images are turned so the finger axis is horizontal (FV-USM crops are upright)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DatasetError(f"cannot read image {path}")
    if modality == "vein" and img.shape[0] > img.shape[1]:
        img = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    return img


_EXTRACTOR = None


def nbis_extractor():
    """One NBIS extractor per process: creating one takes seconds (nbis-py loads its NFIQ2 models)."""
    global _EXTRACTOR
    if _EXTRACTOR is None:
        import nbis

        _EXTRACTOR = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None))
    return _EXTRACTOR


def _features(job: tuple[str, str]) -> tuple[bytes | None, dict[str, float]]:
    """Yardstick template and statistics of one image (runs in a worker)."""
    cv2.setNumThreads(1)
    modality, path = job
    img = load_grey(Path(path), modality)
    if modality == "vein":
        from training.classic.miura import maximum_curvature

        pattern = maximum_curvature(img)
        return np.packbits(pattern).tobytes(), vein_stats(img, pattern)
    try:
        template = nbis_extractor().extract_minutiae_from_image_file(str(path)).to_iso_19794_2_2005()
    except Exception:  # noqa: BLE001 - a failure to extract is a failure to match, counted honestly as score 0
        template = None
    return template, fingerprint_stats(img)


def _score_pairs(modality: str, templates: list, shapes: list, pairs: list[tuple[int, int]]) -> np.ndarray:
    if modality == "vein":
        from training.classic.miura import miura_match

        pats = [np.unpackbits(np.frombuffer(t, np.uint8))[: s[0] * s[1]].reshape(s) for t, s in zip(templates, shapes,
                                                                                                    strict=True)]
        return np.array([miura_match(pats[a], pats[b]) for a, b in pairs])
    ext = nbis_extractor()
    loaded = [ext.load_iso_19794_2_2005(t) if t is not None else None for t in templates]
    return np.array([float(loaded[a].compare(loaded[b])) if loaded[a] is not None and loaded[b] is not None else 0.0
                     for a, b in pairs])


def _score_chunk(job: tuple) -> np.ndarray:
    cv2.setNumThreads(1)
    return _score_pairs(*job)


def evaluate_set(images: SetImages, modality: str, workers: int = 2) -> dict:
    """Yardstick EER (FVC protocol) with pair counts, plus mean image statistics, for one set."""
    from device.progress import tqdm
    from training.protocol import fvc_pairs, summarize

    jobs = [(modality, str(p)) for p in images.paths]
    pool = get_context("fork").Pool(workers) if workers > 1 else None
    imap = pool.imap if pool is not None else (lambda f, it, chunksize=1: map(f, it))
    try:
        feats = list(tqdm(imap(_features, jobs, chunksize=4), total=len(jobs), desc=f"features {images.name}",
                          leave=False))
        templates = [f[0] for f in feats]
        shapes = [load_grey(p, modality).shape for p in images.paths[:1]] * len(images.paths)
        genuine, impostor = fvc_pairs(images.labels, images.impressions)
        all_pairs = genuine + impostor
        size = max(1, -(-len(all_pairs) // (workers * 4)))
        chunks = [(modality, templates, shapes, all_pairs[i:i + size]) for i in range(0, len(all_pairs), size)]
        scores = np.concatenate(list(tqdm(imap(_score_chunk, chunks), total=len(chunks),
                                          desc=f"scores {images.name}", leave=False)))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    summary = summarize(scores[: len(genuine)], scores[len(genuine):])
    return {"dataset": images.name, "kind": images.kind, "yardstick": YARDSTICKS[modality],
            "eer": summary["eer"], "genuine_pairs": summary["genuine_pairs"],
            "impostor_pairs": summary["impostor_pairs"], "images": len(images.paths),
            "failed_extractions": sum(t is None for t in templates), **mean_stats([f[1] for f in feats])}


def _cached(out: Path, images: SetImages, modality: str, workers: int) -> dict:
    key = images.name.replace("/", "_") + f"_{modality}_{len(images.paths)}.json"
    path = out / "cache" / key
    if path.is_file():
        return json.loads(path.read_text())
    row = evaluate_set(images, modality, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    return row


def judge(rows: list[dict]) -> None:
    """Mark each synthetic row inside / outside the real EER range (adds ``in_real_range``)."""
    real = [r["eer"] for r in rows if r["kind"] == "real"]
    lo, hi = min(real), max(real)
    if len(real) == 1:
        lo, hi = lo * (1 - SINGLE_SET_TOLERANCE), hi * (1 + SINGLE_SET_TOLERANCE)
    for r in rows:
        r["in_real_range"] = bool(lo <= r["eer"] <= hi) if r["kind"] == "synthetic" else None
    for r in rows:
        r["real_range"] = [lo, hi]


def to_markdown(rows: list[dict], modality: str) -> str:
    """The calibration table as markdown."""
    stat = "ridge period px" if modality == "fingerprint" else "vessel px %"
    head = (f"| dataset | kind | yardstick | EER % | genuine / impostor pairs | {stat} | foreground % | grey mean "
            "| grey std | in real range |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        s = f"{r['ridge_period']:.2f}" if modality == "fingerprint" else f"{100 * r.get('vessel_fraction', 0):.1f}"
        inside = "" if r["in_real_range"] is None else ("yes" if r["in_real_range"] else "no")
        lines.append(f"| {r['dataset']} | {r['kind']} | {r['yardstick']} | {100 * r['eer']:.2f} | "
                     f"{r['genuine_pairs']} / {r['impostor_pairs']} | {s} | {100 * r['foreground']:.0f} | "
                     f"{r['grey_mean']:.0f} | {r['grey_std']:.0f} | {inside} |")
    lo, hi = rows[0]["real_range"]
    lines.append(f"\nReal EER range used for the verdict: {100 * lo:.2f}-{100 * hi:.2f} %.")
    return "\n".join(lines)


def run_calibration(modality: str, real: Path, out: Path, profile: str | None = None, identities: int | None = None,
                    impressions: int | None = None, seeds: list[int] | None = None,
                    max_real_identities: int | None = None, workers: int = 2) -> CalibrationResult:
    """Evaluate real and synthetic sets, write calibration.md / .json and contact sheets under ``out``."""
    from training.synth import generate_dataset
    from training.synth.sheet import contact_sheet

    d_profile, d_ids, d_imps = DEFAULTS[modality]
    profile, identities, impressions = profile or d_profile, identities or d_ids, impressions or d_imps
    seeds = seeds or [1]
    out = Path(out)
    reals = real_sets(Path(real), modality, max_real_identities)
    out.mkdir(parents=True, exist_ok=True)
    rows = [_cached(out, s, modality, workers) for s in reals]
    synths = []
    for seed in seeds:
        manifest = generate_dataset(modality, identities, impressions, profile, seed, out / f"synth-{profile}-s{seed}",
                                    force=True, workers=workers, progress=False)
        synths.append(synthetic_set(manifest, f"synthetic {profile} seed {seed}"))
        rows.append(evaluate_set(synths[-1], modality, workers))
    judge(rows)
    md = to_markdown(rows, modality)
    md_path, json_path = out / "calibration.md", out / "calibration.json"
    md_path.write_text(md + "\n")
    json_path.write_text(json.dumps({"modality": modality, "profile": profile, "rows": rows}, indent=1))
    sheet = contact_sheet(modality, reals, synths, out / "contact_sheet.png", load_grey)
    contact_sheet(modality, [], synths, out / "synthetic_sheet.png", load_grey)
    return CalibrationResult(rows, md, md_path, json_path, sheet)
