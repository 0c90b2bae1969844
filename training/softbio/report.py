"""Write the study: report.md, results.json and PNGs (confusion matrices, ROC with AUC, training curves).

Works from the plain dictionaries of ``training.softbio.metrics.evaluate_run`` (so a results.json can be re-plotted)
and ends with the limitations every reader of such a number needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.softbio.dataset import CLASSES

LIMITATIONS = """\
## Limitations: read before quoting any number above

- **What the number is.** Accuracy of telling the *labelled* sex (as recorded by the dataset, binary) from one
  fingerprint image, for the people in this dataset, with the split named in the row. Only the *subject* split
  measures anything about new people; the *image* split lets the same person (and altered copies of one print)
  appear in training and test, and its higher number is leakage, not skill. Always quote the subject split.
- **What it is not.** Not a property of fingerprints in general, and not transferable to another population,
  sensor or resolution: ridge density differs between populations at least as much as between sexes (the
  studies behind the synthetic generator report women 17.7 vs men 15.0 ridges/25 mm^2 in one sample and 13.9 vs
  12.3 in another), and depends on which finger area a sensor sees. A balanced accuracy of 0.6-0.7 still means
  one person in three or more is misclassified. Sex is not the same as gender, and is not binary for everyone;
  a two-class label cannot describe intersex people.
- **Dataset demographics.** SOCOFing (Shehu et al. 2018): 600 African subjects aged 18 or more, 10 fingers each,
  6,000 real images at 500 dpi plus about 49,000 altered copies (obliteration, central rotation, z-cut) made with
  a software tool, so altered images are *copies* of the real ones, not new captures. One population, one
  scanner. Check the class counts in the Data line: when one sex dominates, plain accuracy rewards guessing it,
  which is why training is class-balanced and balanced accuracy is reported. Synthetic sets carry exactly the
  signal the generator planted (ridge density by sex) and nothing else: they test the tool, not biology.
- **Privacy.** Inferring sex (or any attribute) from a biometric sample turns a template that should only answer
  "same finger?" into a source of personal data the person did not give. Under the GDPR, biometric data used to
  identify someone is special-category data (Art. 9) and any further inference needs its own lawful basis and
  purpose. biolock never runs this in an unlock decision and never stores its output; use it only for research
  on data collected with consent for that purpose, and do not use it to profile or sort people.
"""


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def results_table(evaluations: list[dict]) -> str:
    """One markdown row per model x split: counts, accuracy, balanced accuracy [95 % CI], AUC."""
    lines = ["| model | split | test images (F/M) | test subjects | accuracy | balanced accuracy [95% CI] | AUC |",
             "|---|---|---|---|---|---|---|"]
    for e in evaluations:
        per = e["test_images_per_class"]
        lo, hi = e["balanced_accuracy_ci95"]
        lines.append(f"| {e['model']} | {e['split']} | {e['test_images']} ({per['F']}/{per['M']}) | "
                     f"{e['test_subjects']} | {_fmt(e['accuracy'])} | {_fmt(e['balanced_accuracy'])} "
                     f"[{_fmt(lo)}, {_fmt(hi)}] | {_fmt(e['auc'])} |")
    return "\n".join(lines)


def leakage_table(evaluations: list[dict]) -> str:
    """Per model: balanced accuracy with the image split minus with the subject split (the leak's worth)."""
    by = {(e["model"], e["split"]): e for e in evaluations}
    models = list(dict.fromkeys(e["model"] for e in evaluations))
    rows = [m for m in models if (m, "subject") in by and (m, "image") in by]
    if not rows:
        return ""
    lines = ["| model | subject split | image split | inflation |", "|---|---|---|---|"]
    for m in rows:
        s, i = by[(m, "subject")]["balanced_accuracy"], by[(m, "image")]["balanced_accuracy"]
        lines.append(f"| {m} | {_fmt(s)} | {_fmt(i)} | {i - s:+.3f} |")
    return "\n".join(lines)


def group_table(evaluations: list[dict], key: str, title: str) -> str:
    """Accuracy per group (finger, hand, real/altered) for every run; '-' where a run has no such images."""
    groups = sorted({g for e in evaluations for g in e[key]})
    if not groups or groups == ["unknown"]:
        return f"_{title}: not available (the dataset does not record it)._"
    head = "| model | split | " + " | ".join(groups) + " |"
    lines = [f"**{title}** (accuracy, n test images)", "", head, "|---|---|" + "---|" * len(groups)]
    for e in evaluations:
        cells = [f"{e[key][g]['accuracy']:.3f} (n={e[key][g]['n']})" if g in e[key] else "-" for g in groups]
        lines.append(f"| {e['model']} | {e['split']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def classification_reports(evaluations: list[dict]) -> str:
    out = []
    for e in evaluations:
        rep = e["classification_report"]
        lines = [f"**{e['model']} / {e['split']} split**", "", "| class | precision | recall | F1 | support |",
                 "|---|---|---|---|---|"]
        for c in (*CLASSES, "macro avg", "weighted avg"):
            r = rep[c]
            lines.append(f"| {c} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} | "
                         f"{int(r['support'])} |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def plot_confusions(evaluations: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    n = len(evaluations)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    for ax, e in zip(axes[0], evaluations, strict=True):
        cm = np.array(e["confusion_matrix"], float)
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, f"{int(v)}\n{share[i, j]:.0%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks([0, 1], CLASSES)
        ax.set_yticks([0, 1], CLASSES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{e['model']} / {e['split']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(evaluations: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for e in evaluations:
        if e["roc"]:
            style = "-" if e["split"] == "subject" else "--"
            ax.plot(e["roc"]["fpr"], e["roc"]["tpr"], style, label=f"{e['model']} / {e['split']}: AUC {_fmt(e['auc'])}")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.set_xlabel("false positive rate (F called M)")
    ax.set_ylabel("true positive rate (M called M)")
    ax.set_title("ROC, test part")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(evaluations: list[dict], path: Path) -> bool:
    """Training and validation accuracy and loss per epoch of every CNN run; False if there is none."""
    import matplotlib.pyplot as plt

    runs = [e for e in evaluations if e.get("history")]
    if not runs:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for e in runs:
        h = e["history"]
        label = f"{e['model']} / {e['split']}"
        for ax, key in zip(axes, ("accuracy", "loss"), strict=True):
            line = ax.plot(h.get(key, []), label=f"{label} train")[0]
            ax.plot(h.get(f"val_{key}", []), "--", color=line.get_color(), label=f"{label} val")
    for ax, key in zip(axes, ("accuracy", "loss"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(study: dict, out_dir: Path) -> dict[str, Path]:
    """report.md + results.json + confusion.png, roc.png, curves.png (if any CNN ran) under ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    evals = study["evaluations"]
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "report.md",
             "confusion": out_dir / "confusion.png", "roc": out_dir / "roc.png"}
    paths["json"].write_text(json.dumps(study, indent=1, default=float), encoding="utf-8")
    plot_confusions(evals, paths["confusion"])
    plot_roc(evals, paths["roc"])
    if plot_curves(evals, out_dir / "curves.png"):
        paths["curves"] = out_dir / "curves.png"
    paths["markdown"].write_text(markdown(study, paths), encoding="utf-8")
    return paths


def markdown(study: dict, paths: dict[str, Path]) -> str:
    d, evals = study["data"], study["evaluations"]
    shared = study.get("shared_between_parts", {})
    split_lines = [f"- {kind}: " + ", ".join(f"{part} {c['images']} images / {c['subjects']} subjects "
                                            f"(F {c['images_F']}, M {c['images_M']})" for part, c in counts.items())
                   + (f"; shared between parts: {shared[kind]['subjects']} subjects, "
                      f"{shared[kind]['source_prints']} source prints" if kind in shared else "")
                   for kind, counts in study["splits"].items()]
    parts = [
        "# Soft-biometric study: sex from fingerprints", "",
        "Analysis only: biolock never uses this in an unlock decision.", "",
        f"Command: `{study['command']}`", "",
        f"Data: {d['images']} images of {d['subjects']} subjects (F {d['images_F']} images / {d['subjects_F']} "
        f"subjects, M {d['images_M']} / {d['subjects_M']}); {d['altered_images']} altered; {d['skipped']} files "
        f"skipped; layout {d['layout']}; {study['size']}x{study['size']} grey.", "",
        "Splits (seed {}, test 20 %, validation 20 % of the rest, stratified by sex):".format(study["seed"]),
        *split_lines, "",
        "Budget (every model): " + ", ".join(f"{k} {v}" for k, v in study["budget"].items() if k != "verbose")
        + (" -- labels PERMUTED across subjects (null case)" if study.get("permuted_labels") else ""), "",
        "## Results (test part)", "", results_table(evals), "",
    ]
    leak = leakage_table(evals)
    if leak:
        parts += ["## What the leaky split adds", "", leak, ""]
    parts += ["## Per finger, hand and alteration", "",
              group_table(evals, "per_finger", "Per finger"), "", group_table(evals, "per_hand", "Per hand"), "",
              group_table(evals, "real_vs_altered", "Real vs altered"), "",
              "## Classification reports", "", classification_reports(evals), "",
              "## Figures", "", *(f"- {k}: `{p.name}`" for k, p in paths.items() if p.suffix == ".png"), "",
              LIMITATIONS]
    if study.get("skipped"):
        parts += ["", "## Skipped files", "", *(f"- {p}: {r}" for p, r in study["skipped"][:50])]
        if len(study["skipped"]) > 50:
            parts.append(f"- ... and {len(study['skipped']) - 50} more (see results.json)")
    return "\n".join(parts) + "\n"
