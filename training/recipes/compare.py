"""Loss comparison at a small, equal budget: same data, split, seed, network, epochs and steps for every loss.

For each loss: train, keep the best-validation-EER checkpoint, report EER and FMR100 on the held-out synthetic
test identities (and on every real set given with ``--real``) and the epoch at which validation EER was best.
Writes ``<out>/losses.md`` and ``<out>/losses.json``.
"""

from __future__ import annotations

import json
from pathlib import Path


def compare_losses(modality: str, data: Path, losses: list[str], epochs: int, steps: int, out_dir: Path,
                   real: Path | None = None, preset: str | None = None, cache_dir: Path | None = None,
                   batch_p: int | None = None) -> str:
    """Train one model per loss and return the markdown table (also written to ``out_dir``)."""
    from training.evaluate import evaluate_model
    from training.fit import fit
    from training.prepared import prepare
    from training.train_config import build_config

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out_dir / "cache"
    preset = preset or f"ship-{modality}"
    prepared = None
    rows = []
    for loss in losses:
        table = {"loss": {"name": loss}, "optim": {"epochs": epochs, "steps_per_epoch": steps, "patience": epochs}}
        if batch_p:  # same number of images per step for the offline-triplet batches (3 per triplet)
            table["optim"]["batch_p"] = batch_p
            table["loss"]["triplets_per_batch"] = max(1, round(batch_p * build_config(None, preset).optim.batch_k / 3))
        cfg = build_config(table, preset)
        if prepared is None:
            prepared = prepare(data, modality, cache_dir=cache_dir, workers=cfg.data.workers,
                               min_impressions=2)
        run = out_dir / loss
        res = fit(cfg, prepared, run)
        row = {"loss": loss, "best_epoch": res.best_epoch, "val_eer": res.best_val_eer,
               "test": res.test_metrics, "seconds": round(res.seconds), "real": {}}
        if real is not None:
            results, _ = evaluate_model(res.best_model, real, modality, cache_dir=cache_dir, progress=False)
            row["real"] = {k: {"eer": v["eer"], "fmr100": v["fmr100"], "genuine_pairs": v["genuine_pairs"],
                               "impostor_pairs": v["impostor_pairs"]} for k, v in results["datasets"].items()}
        rows.append(row)
        (out_dir / "losses.json").write_text(json.dumps(rows, indent=2, default=float))
    table = format_table(rows, epochs, steps)
    (out_dir / "losses.md").write_text(table + "\n")
    return table


def format_table(rows: list[dict], epochs: int, steps: int) -> str:
    real_names = sorted({k for r in rows for k in r["real"]})
    head = ["loss", "synthetic test EER", "synthetic test FNMR at FMR 1 %",
            *[f"{n} EER / FNMR at FMR 1 %" for n in real_names],
            "epoch of best val EER"]
    lines = [f"Budget per loss: {epochs} epochs x {steps} steps.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["test"] or {}
        cells = [r["loss"], _pct(t.get("eer")), _pct(t.get("fmr100"))]
        for n in real_names:
            v = r["real"].get(n)
            cells.append(f"{_pct(v['eer'])} / {_pct(v['fmr100'])}" if v else "n/a")
        cells.append(str(r["best_epoch"]))
        lines.append("| " + " | ".join(cells) + " |")
    if rows and rows[0].get("test"):
        t = rows[0]["test"]
        lines += ["", f"Synthetic test pairs: {t['genuine_pairs']:,} genuine / {t['impostor_pairs']:,} impostor."]
    return "\n".join(lines)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"
