"""Evaluation reports: markdown + HTML with PNG plots (ROC, DET, score histograms, FMR/FNMR vs threshold with
the EER and the card's operating points marked, training curves with the best epoch) and the model card.
DET/ROC/histograms come from ``training.detplot`` (shared with ``biolock eval``); matplotlib runs on Agg.

The numbers come from ``training.evaluate`` (FVC protocol per dataset); this module only draws and writes.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(history: list[dict], path: Path) -> Path:
    """Loss and validation EER / FNMR at FMR 1 % per epoch: integer epoch ticks, the best epoch marked."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    epochs = [int(r["epoch"]) for r in history]
    eers = [100 * r["val_eer"] for r in history]
    best = epochs[int(np.argmin(eers))] if eers else None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(epochs, [r["loss"] for r in history], marker="o")
    a.set_ylabel("training loss")
    b.plot(epochs, eers, marker="o", label="val EER")
    b.plot(epochs, [100 * r["val_fmr100"] for r in history], marker=".", label="val FNMR at FMR 1 %")
    b.set_ylabel("%")
    for ax in (a, b):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if best is not None:
            ax.axvline(best, color="k", ls="--", lw=0.8, label=f"best epoch {best}" if ax is b else None)
    if best is not None:
        b.plot([best], [min(eers)], "r*", ms=11, label=f"best val EER {min(eers):.2f} %")
    b.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_scores(name: str, genuine: np.ndarray, impostor: np.ndarray, out_dir: Path,
                marks: dict[str, float] | None = None) -> dict[str, Path]:
    """ROC, DET (training.detplot: normal-deviate axes, cut at the pair counts), histogram and FMR/FNMR-vs-threshold
    plots for one dataset, the EER and ``marks`` (a card's thresholds) marked; returns {kind: path}."""
    from training import metrics
    from training.detplot import Curve, det_plot, histogram_plot, roc_plot

    plt = _plt()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    e = metrics.eer(genuine, impostor)
    curve = Curve(name, np.asarray(genuine, np.float64), np.asarray(impostor, np.float64),
                  {"EER": float(e.threshold), **(marks or {})})
    out: dict[str, Path] = {
        "roc": roc_plot([curve], out_dir / f"{safe}_roc.png", f"ROC {name}"),
        "det": det_plot([curve], out_dir / f"{safe}_det.png", f"DET {name}"),
        "hist": histogram_plot(curve, out_dir / f"{safe}_hist.png", f"scores {name}"),
    }
    t = np.linspace(-1, 1, 401)
    r_fmr, r_fnmr = metrics.rates_at(genuine, impostor, t)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(t, r_fmr, label=f"FMR ({len(impostor):,} impostor pairs)")
    ax.plot(t, r_fnmr, label=f"FNMR ({len(genuine):,} genuine pairs)")
    ax.plot([e.threshold], [e.eer], "ro", label=f"EER {e.eer * 100:.2f} % at {e.threshold:.3f}")
    for label, thr in (marks or {}).items():
        ax.axvline(thr, color="k", ls=":", lw=0.8)
        ax.annotate(label, (thr, 0.5), rotation=90, fontsize=7)
    ax.set_xlabel("threshold (cosine)")
    ax.set_ylabel("rate")
    ax.legend(fontsize=8)
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


COLUMNS = ("dataset", "genuine / impostor pairs", "EER", "FNMR at FMR 1 %", "FNMR at FMR 0.1 %", "FNMR at FMR 0",
           "ROC AUC", "rank-1")


def results_table(results: dict) -> list[str]:
    """Markdown table rows for ``training.evaluate`` results (one row per dataset)."""
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, r in results["datasets"].items():
        rows.append(
            f"| {name} | {r['genuine_pairs']:,} / {r['impostor_pairs']:,} | {_pct(r['eer'])} | {_pct(r['fmr100'])} | "
            f"{_pct(r['fmr1000'])} | {_pct(r['zero_fmr'])} | {r['roc_auc']:.4f} | {_pct(r.get('rank1'))} |"
        )
    return rows


NOTE = ("FVC protocol per dataset (genuine: all impression pairs of a finger; impostor: first impressions of "
        "different fingers). EER is the midpoint of FVC's [EER_low, EER_high] at observed scores (no interpolation "
        "between scores); FNMR at FMR 0.1 % only with >= 1,000 impostor pairs. DET curves stop where the pair "
        "counts end (no FMR below 1/impostor pairs is measured).")


def card_marks(card: dict | None) -> dict[str, float]:
    """A card's operating points as {label: threshold}, e.g. ``FMR 1/10,000 (balanced)`` (device security levels)."""
    names = {"1e-3": "FMR 1/1,000 (convenient)", "1e-4": "FMR 1/10,000 (balanced)", "2e-5": "FMR 1/50,000 (secure)"}
    return {names.get(k, f"FMR {k}"): float(t) for k, t in ((card or {}).get("thresholds") or {}).items()
            if isinstance(t, (int, float))}


def write_report(results: dict, scores: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path,
                 history: list[dict] | None = None, card: dict | None = None) -> dict[str, Path]:
    """Write report.md, report.html (with the model card), results.json and PNGs into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = Path(str(results["model"])).name
    plots = {name: plot_scores(name, np.asarray(g), np.asarray(i), out_dir, card_marks(card))
             for name, (g, i) in scores.items()}
    if history:
        plot_training_curves(history, out_dir / "curves.png")
    lines = [f"# Evaluation of {model}", "", NOTE, "", *results_table(results)]
    if card:
        lines += ["", "## Model card", "", "| field | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in card_rows(card)]
    if history:
        lines += ["", "## Training curves", "", "![training curves](curves.png)"]
    for name, kinds in plots.items():
        lines += ["", f"## {name}", ""] + [f"![{k}]({p.name})" for k, p in kinds.items()]
    md = out_dir / "report.md"
    md.write_text("\n".join(lines) + "\n")
    html_path = out_dir / "report.html"
    html_path.write_text(_html(model, results, plots, card, bool(history)))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=float))
    return {"markdown": md, "html": html_path, "json": out_dir / "results.json"}


def card_rows(card: dict) -> list[tuple[str, str]]:
    """The card fields a reader checks first, flattened to (field, value) text."""
    rows = [(k, str(card[k])) for k in ("name", "version", "modality", "preprocessing", "quantization", "file",
                                        "trained_on", "created") if card.get(k) not in (None, "")]
    for k, v in (card.get("thresholds") or {}).items():
        rows.append((f"threshold {k}", f"{v:.4f}" if isinstance(v, float) else str(v)))
    for k, v in (card.get("metrics") or {}).items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}: {b}" for a, b in v.items())
        rows.append((f"metric {k}", f"{v:.4f}" if isinstance(v, float) else str(v)))
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(model: str, results: dict, plots: dict[str, dict[str, Path]], card: dict | None, curves: bool) -> str:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in results_table(results)[2:]]
    parts = [f"<h1>Evaluation of {html.escape(model)}</h1>", f"<p>{html.escape(NOTE)}</p>", _table(COLUMNS, rows)]
    if card:
        parts += ["<h2>Model card</h2>", _table(("field", "value"), card_rows(card))]
    if curves:
        parts += ["<h2>Training curves</h2>", '<img src="curves.png" alt="training curves">']
    for name, kinds in plots.items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts += [f'<img src="{html.escape(p.name)}" alt="{html.escape(k)} {html.escape(name)}">'
                  for k, p in kinds.items()]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}img{max-width:48%}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>biolock report: {html.escape(model)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
