"""Evaluation reports: markdown + HTML with PNG plots (ROC, DET, score histograms, FMR/FNMR vs threshold with
the EER marked, training curves). Matplotlib runs on the Agg backend (no display needed).

The numbers come from ``training.evaluate`` (FVC protocol per dataset); this module only draws and writes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(history: list[dict], path: Path) -> Path:
    """Loss and validation EER / FMR100 per epoch."""
    plt = _plt()
    epochs = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(epochs, [r["loss"] for r in history], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    a.grid(alpha=0.3)
    b.plot(epochs, [100 * r["val_eer"] for r in history], marker="o", label="val EER")
    b.plot(epochs, [100 * r["val_fmr100"] for r in history], marker=".", label="val FMR100")
    b.set_xlabel("epoch")
    b.set_ylabel("%")
    b.legend()
    b.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_scores(name: str, genuine: np.ndarray, impostor: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """ROC, DET, histogram and FMR/FNMR-vs-threshold plots for one dataset; returns {kind: path}."""
    from training import metrics

    plt = _plt()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    out: dict[str, Path] = {}
    e = metrics.eer(genuine, impostor)

    fmr, tmr, _ = metrics.roc_curve(genuine, impostor)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fmr, tmr)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("FMR")
    ax.set_ylabel("TMR = 1 - FNMR")
    ax.set_title(f"ROC {name}")
    ax.grid(alpha=0.3)
    out["roc"] = _save(fig, plt, out_dir / f"{safe}_roc.png")

    fmr, fnmr, _ = metrics.det_curve(genuine, impostor)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(np.maximum(fmr, 1e-5), np.maximum(fnmr, 1e-5))
    ax.plot([e.eer], [e.eer], "ro", label=f"EER {e.eer * 100:.2f}%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FMR")
    ax.set_ylabel("FNMR")
    ax.set_title(f"DET {name}")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    out["det"] = _save(fig, plt, out_dir / f"{safe}_det.png")

    fig, ax = plt.subplots(figsize=(5, 3.6))
    bins = np.linspace(-1, 1, 81)
    ax.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor ({len(impostor)})")
    ax.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine ({len(genuine)})")
    ax.axvline(e.threshold, color="k", ls="--", lw=1, label="EER threshold")
    ax.set_xlabel("cosine score")
    ax.legend()
    ax.set_title(f"scores {name}")
    out["hist"] = _save(fig, plt, out_dir / f"{safe}_hist.png")

    t = np.linspace(-1, 1, 401)
    r_fmr, r_fnmr = metrics.rates_at(genuine, impostor, t)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(t, r_fmr, label="FMR")
    ax.plot(t, r_fnmr, label="FNMR")
    ax.plot([e.threshold], [e.eer], "ro", label=f"EER {e.eer * 100:.2f}% at {e.threshold:.3f}")
    ax.set_xlabel("threshold (cosine)")
    ax.set_ylabel("rate")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title(f"FMR / FNMR {name}")
    out["rates"] = _save(fig, plt, out_dir / f"{safe}_rates.png")
    return out


def _save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def results_table(results: dict) -> list[str]:
    """Markdown table rows for ``training.evaluate`` results (one row per dataset)."""
    rows = [
        "| dataset | genuine / impostor pairs | EER | FMR100 | FMR1000 | ZeroFMR | ROC AUC | rank-1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["datasets"].items():
        rows.append(
            f"| {name} | {r['genuine_pairs']:,} / {r['impostor_pairs']:,} | {_pct(r['eer'])} | {_pct(r['fmr100'])} | "
            f"{_pct(r['fmr1000'])} | {_pct(r['zero_fmr'])} | {r['roc_auc']:.4f} | {_pct(r.get('rank1'))} |"
        )
    return rows


def write_report(results: dict, scores: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path,
                 history: list[dict] | None = None) -> dict[str, Path]:
    """Write report.md, report.html, results.json and PNGs into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# Evaluation of `{results['model']}`", "",
             "FVC protocol per dataset (genuine: all impression pairs of a finger; impostor: first impressions "
             "of different fingers). EER is the midpoint of FVC's [EER_low, EER_high] at observed scores "
             "(no interpolation between scores); FMR1000 only with >= 1,000 impostor pairs.", ""]
    lines += results_table(results)
    plots: dict[str, dict[str, Path]] = {}
    for name, (g, i) in scores.items():
        plots[name] = plot_scores(name, np.asarray(g), np.asarray(i), out_dir)
    if history:
        plot_training_curves(history, out_dir / "curves.png")
        lines += ["", "## Training curves", "", "![training curves](curves.png)"]
    for name, kinds in plots.items():
        lines += ["", f"## {name}", ""]
        lines += [f"![{k}]({p.name})" for k, p in kinds.items()]
    md = out_dir / "report.md"
    md.write_text("\n".join(lines) + "\n")
    body = []
    for line in lines:
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1 : -1]
            body.append(f'<img src="{html.escape(src)}" style="max-width:48%">')
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            tag = "th" if "dataset" in cells[0] else "td"
            body.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
        elif line:
            body.append(f"<p>{html.escape(line)}</p>")
    page = "\n".join(body)
    page = page.replace("<tr>", "<table border=1 cellpadding=4><tr>", 1)
    idx = page.rfind("</tr>")
    if idx >= 0:
        page = page[: idx + 5] + "</table>" + page[idx + 5 :]
    html_path = out_dir / "report.html"
    html_path.write_text(f"<!doctype html><meta charset=utf-8><title>biolock report</title>\n{page}\n")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=float))
    return {"markdown": md, "html": html_path, "json": out_dir / "results.json"}
