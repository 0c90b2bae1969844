"""DET, ROC and score-histogram PNGs, shared by ``biolock eval``, ``biolock calibrate`` and training reports.

Why here and lazy: matplotlib is a training dependency (the ``train`` extra), so it is imported inside each
function and a board without it gets ``PlotError`` saying how to install it; the rest of ``biolock eval`` works.
The DET plot uses normal-deviate axes (Martin et al. 1997) and is cut where the pair counts end: an FMR below
1/impostors or an FNMR below 1/genuine pairs is not measured, so the axes stop there instead of drawing zeros.
Operating points (a card's thresholds per security level) are marked on every curve they belong to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.errors import BiolockError

HOW_TO_GET = "pip install 'biolock[train]' (or just: pip install matplotlib)"


class PlotError(BiolockError):
    """Plots were asked for but matplotlib is not installed here."""


@dataclass
class Curve:
    """One score set to draw: genuine and impostor scores and the thresholds to mark (label -> threshold)."""

    label: str
    genuine: np.ndarray
    impostor: np.ndarray
    marks: Mapping[str, float] = field(default_factory=dict)


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotError(f"plots need matplotlib, which is not installed: {HOW_TO_GET}") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _norm_ppf(p: np.ndarray) -> np.ndarray:
    """Inverse standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9), no SciPy needed."""
    a = [-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00]
    b = [-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01]
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00]
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    out = np.empty_like(p)
    lo, hi = p < 0.02425, p > 1 - 0.02425
    mid = ~(lo | hi)
    q = np.sqrt(-2 * np.log(p[lo]))
    out[lo] = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
        (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    q = np.sqrt(-2 * np.log(1 - p[hi]))
    out[hi] = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
        (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    return out


def _rates(curve: Curve, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from training.metrics import rates_at

    return rates_at(curve.genuine, curve.impostor, thresholds)


def det_plot(curves: Sequence[Curve], path: Path | str, title: str = "DET") -> Path:
    """DET curves on normal-deviate axes, cut at 1/pairs, with each curve's marked thresholds."""
    from training.metrics import det_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    lo_x = min(1.0 / max(1, c.impostor.size) for c in curves)
    lo_y = min(1.0 / max(1, c.genuine.size) for c in curves)
    for c in curves:
        fmr, fnmr, _ = det_curve(c.genuine, c.impostor)
        keep = (fmr >= 1.0 / c.impostor.size) & (fnmr >= 1.0 / c.genuine.size)
        (line,) = ax.plot(_norm_ppf(fmr[keep]), _norm_ppf(fnmr[keep]), label=f"{c.label} ({c.genuine.size:,} gen / "
                          f"{c.impostor.size:,} imp)")
        if c.marks:
            fm, fn = _rates(c, np.array(list(c.marks.values())))
            for (name, _), x, y in zip(c.marks.items(), fm, fn, strict=True):
                x, y = max(x, lo_x), max(y, lo_y)  # a zero rate sits on the axis edge (not measured below it)
                ax.plot(_norm_ppf(np.array([x])), _norm_ppf(np.array([y])), "o", color=line.get_color())
                ax.annotate(name, (_norm_ppf(np.array([x]))[0], _norm_ppf(np.array([y]))[0]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
    ticks = np.array([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8, 0.95])
    for setter, lo in ((ax.set_xticks, lo_x), (ax.set_yticks, lo_y)):
        t = ticks[ticks >= lo * 0.999]
        setter(_norm_ppf(t), [f"{v:g}" for v in t])
    ax.set_xlim(_norm_ppf(np.array([lo_x]))[0], _norm_ppf(np.array([0.95]))[0])
    ax.set_ylim(_norm_ppf(np.array([lo_y]))[0], _norm_ppf(np.array([0.95]))[0])
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, plt, path)


def roc_plot(curves: Sequence[Curve], path: Path | str, title: str = "ROC") -> Path:
    """TMR against FMR on a log FMR axis, cut at 1/impostors."""
    from training.metrics import roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for c in curves:
        fmr, tmr, _ = roc_curve(c.genuine, c.impostor)
        keep = fmr >= 1.0 / c.impostor.size
        ax.plot(fmr[keep], tmr[keep], label=c.label)
    ax.set_xscale("log")
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("true match rate (1 - FNMR)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, plt, path)


def histogram_plot(curve: Curve, path: Path | str, title: str | None = None) -> Path:
    """Genuine and impostor score densities (impostors also on a log count axis) with the thresholds marked."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    both = np.concatenate([curve.genuine, curve.impostor])
    finite = both[np.isfinite(both)]
    bins = np.linspace(float(finite.min()), float(finite.max()), 80) if finite.size else 10
    for ax, log in zip(axes, (False, True), strict=True):
        ax.hist(curve.impostor[np.isfinite(curve.impostor)], bins=bins, alpha=0.6, label=f"impostor "
                f"({curve.impostor.size:,})", density=not log, log=log)
        ax.hist(curve.genuine[np.isfinite(curve.genuine)], bins=bins, alpha=0.6, label=f"genuine "
                f"({curve.genuine.size:,})", density=not log, log=log)
        for name, t in curve.marks.items():
            ax.axvline(t, linestyle="--", linewidth=0.8, color="k")
            ax.text(t, ax.get_ylim()[1] * (0.5 if log else 0.9), name, rotation=90, fontsize=7)
        ax.set_ylabel("count (log)" if log else "density")
        ax.legend(fontsize=7)
    axes[1].set_xlabel("score")
    axes[0].set_title(title or curve.label)
    return _save(fig, plt, path)


def _save(fig, plt, path: Path | str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
