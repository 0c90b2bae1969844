"""The one recipe for the shipped models: synthetic data only, reproducible without ../shared/data.

``biolock train ship --out models/`` runs, per modality:

1. generate the synthetic training set (fixed seed; fingerprints: 480 fingers x 6 impressions in each of the
   ``r307`` and ``optical500`` profiles; vein: 600 fingers x 6 ``roi`` crops). With several profiles the same
   fingers are rendered by each and merged into one identity, so genuine pairs cross sensors;
2. ``fit`` with the ``ship-<modality>`` preset (identity-disjoint 70/15/15 split, fixed seed);
3. ``export`` the best checkpoint: int8 + ONNX + model card, thresholds on the validation identities.

Each step is skipped when its output already exists in ``--work`` (``--resume`` continues a cut-off run).
"""

from __future__ import annotations

import csv
from pathlib import Path

SHIP = {
    # "preprocessing" may pin an older version (e.g. "fingerprint-v1"); absent: the current one
    "fingerprint": {"profiles": ("r307", "optical500"), "identities": 1000, "impressions": 6, "seed": 1,
                    "preset": "ship-fingerprint", "name": "fingerprint-mobile", "version": "2.0.0"},
    "vein": {"profiles": ("roi",), "identities": 600, "impressions": 6, "seed": 1,
             "preset": "ship-vein", "name": "vein-mobile", "version": "1.0.0"},
}


def synth_data(modality: str, work: Path, spec: dict | None = None) -> Path:
    """Generate (once) the synthetic set for ``modality`` under ``work``; returns its manifest.csv."""
    from training.synth import generate_dataset

    spec = spec or SHIP[modality]
    root = Path(work) / f"{modality}-data"
    if len(spec["profiles"]) == 1:
        manifest = root / "manifest.csv"
        if not manifest.is_file():
            generate_dataset(modality, spec["identities"], spec["impressions"], spec["profiles"][0], spec["seed"],
                             root, force=True)
        return manifest
    merged = root / "manifest.csv"
    if merged.is_file():
        return merged
    rows = []
    for profile in spec["profiles"]:
        out = root / f"synth-{modality}" / profile
        if not (out / "manifest.csv").is_file():
            generate_dataset(modality, spec["identities"], spec["impressions"], profile, spec["seed"], out,
                             force=True)
        with open(out / "manifest.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                rel = f"{profile}/{row['dataset']}/{row['relpath']}"
                rows.append([f"synth-{modality}", rel, row["identity"], f"{profile}-{row['impression']}"])
    tmp = merged.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "relpath", "identity", "impression"])
        w.writerows(rows)
    tmp.replace(merged)
    return merged


def trained_on(modality: str, spec: dict | None = None) -> str:
    spec = spec or SHIP[modality]
    return (f"synthetic {modality} ({'+'.join(spec['profiles'])} profile), {spec['identities']} identities x "
            f"{spec['impressions'] * len(spec['profiles'])}, seed {spec['seed']}; 70/15/15 identity split")


def ship(modality: str, out_dir: Path, work: Path, resume: bool = False) -> Path:
    """Generate, train and export one shipped model; returns the model card path."""
    from training.export import export_model
    from training.fit import fit
    from training.prepared import prepare
    from training.train_config import build_config

    spec = SHIP[modality]
    work = Path(work)
    data = synth_data(modality, work, spec)
    cfg = build_config(preset=spec["preset"])
    prepared = prepare(data, modality, cache_dir=work / "cache", workers=cfg.data.workers, min_impressions=2,
                       preprocessing_id=spec.get("preprocessing"))
    run = work / f"run-{modality}"
    done = (run / "summary.json").is_file() and (run / "best.keras").is_file()
    if not done or resume:
        fit(cfg, prepared, run, resume=resume and (run / "ckpt" / "state.json").is_file())
    result = export_model(run / "best.keras", data, Path(out_dir), modality, spec["name"], spec["version"],
                          trained_on(modality, spec), stem=modality, split=run / "split.json", write_float=False,
                          cache_dir=work / "cache")
    return result.card


def evaluate_shipped(modality: str, card: Path, work: Path, real: Path | None = None) -> dict:
    """The shipped int8 model (device path) on the unseen synthetic test identities and on real sets."""
    import json

    from training.embed import CardEmbedder
    from training.evaluate import evaluate_model, evaluate_prepared
    from training.prepared import prepare

    work = Path(work)
    embed = CardEmbedder(card)
    data = synth_data(modality, work)
    prepared = prepare(data, modality, embed.input_size, cache_dir=work / "cache", min_impressions=2,
                       progress=False, preprocessing_id=embed.preprocessing_id)
    test_ids = set(json.loads((work / f"run-{modality}" / "split.json").read_text())["test"])
    test = prepared.select([i for i, lab in enumerate(prepared.labels) if lab in test_ids])
    test.datasets = [f"{d} (test identities)" for d in test.datasets]
    results, _ = evaluate_prepared(embed, test)
    out = {"model": str(card), "modality": modality, "synthetic": results, "real": {}}
    if real is not None:
        real_results, _ = evaluate_model(card, real, modality, cache_dir=work / "cache-real", progress=False)
        out["real"] = real_results["datasets"]
    (work / f"ship-{modality}-results.json").write_text(json.dumps(out, indent=2, default=float))
    return out
