"""DET and ROC plots drawn the way ISO/IEC 19795-1 and scikit-learn's DetCurveDisplay draw them.

Why one module: ``biolock train report``, ``biolock eval``, ``biolock calibrate`` and the fusion report all draw
these curves; one implementation keeps axes, cut-offs and labels the same everywhere.

Rules a biometrics engineer expects:
- DET axes are normal deviates (probit of FMR and FNMR), so a Gaussian-score system is a straight line; ticks are
  labelled in percent.
- A curve is cut where its pair counts end: with N impostor pairs no FMR below 1/N was observed, so nothing is
  drawn below it (no curve "down to 1e-5" from 45 impostor pairs). The same for FNMR and genuine pairs.
- Pair counts are in the legend; operating points (a card's thresholds, the EER) are marked and labelled.

Matplotlib runs on the Agg backend (no display). Scores are similarities (match when ``score >= threshold``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np

_TICKS = (0.0001, 0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 95)  # percent


@dataclass(frozen=True)
class OperatingPoint:
    """A named threshold to mark on a curve (e.g. a card's ``FMR 1/10,000`` threshold)."""

    label: str
    threshold: float


@dataclass
class DetSeries:
    """One curve: genuine and impostor similarity scores, plus the operating points to mark on it."""

    label: str
    genuine: np.ndarray
    impostor: np.ndarray
    points: Sequence[OperatingPoint] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.genuine = np.asarray(self.genuine, dtype=np.float64).ravel()
        self.impostor = np.asarray(self.impostor, dtype=np.float64).ravel()
        if self.genuine.size == 0 or self.impostor.size == 0:
            raise ValueError(f"{self.label}: a DET curve needs genuine and impostor scores")

    @property
    def legend(self) -> str:
        return f"{self.label} ({self.genuine.size:,} gen / {self.impostor.size:,} imp pairs)"


def probit(p: np.ndarray | float) -> np.ndarray:
    """The normal deviate of a rate in (0, 1) (the DET axis transform)."""
    inv = NormalDist().inv_cdf
    arr = np.asarray(p, dtype=np.float64)
    return np.vectorize(inv, otypes=[np.float64])(arr)


def resolvable(fmr: np.ndarray, fnmr: np.ndarray, n_genuine: int, n_impostor: int) -> np.ndarray:
    """Mask of DET points both of whose rates were actually observable with these pair counts.

    A rate of 0 (or below one pair's worth) and a rate of 1 cannot be drawn on normal-deviate axes and say nothing
    beyond "fewer than one error in N"; the curve stops there.
    """
    lo_x, lo_y = 1.0 / n_impostor, 1.0 / n_genuine
    return (fmr >= lo_x - 1e-12) & (fnmr >= lo_y - 1e-12) & (fmr < 1.0) & (fnmr < 1.0)


def det_points(series: DetSeries) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, FNMR) at every observed score, restricted to what the pair counts resolve."""
    t = np.append(np.unique(np.concatenate([series.genuine, series.impostor])), np.inf)
    g, i = np.sort(series.genuine), np.sort(series.impostor)
    fmr = 1.0 - np.searchsorted(i, t, side="left") / i.size
    fnmr = np.searchsorted(g, t, side="left") / g.size
    keep = resolvable(fmr, fnmr, g.size, i.size)
    return fmr[keep], fnmr[keep]


def rates_at(series: DetSeries, threshold: float) -> tuple[float, float]:
    """FMR and FNMR of one series at one threshold."""
    fmr = float(np.mean(series.impostor >= threshold))
    fnmr = float(np.mean(series.genuine < threshold))
    return fmr, fnmr


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plt, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def _axis_ticks(lo: float) -> tuple[list[float], list[str]]:
    ticks = [t for t in _TICKS if t / 100 >= lo * 0.999]
    return [float(probit(t / 100)) for t in ticks], [f"{t:g}" for t in ticks]


def plot_det(series: Sequence[DetSeries], path: Path, title: str = "DET") -> Path:
    """Draw DET curves on normal-deviate axes, cut at each curve's pair counts, operating points marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    lo_x = min(1.0 / s.impostor.size for s in series)
    lo_y = min(1.0 / s.genuine.size for s in series)
    for s in series:
        fmr, fnmr = det_points(s)
        (line,) = ax.plot(probit(fmr), probit(fnmr), label=s.legend) if fmr.size else ax.plot([], [], label=s.legend)
        for point in s.points:
            x, y = rates_at(s, point.threshold)
            if not resolvable(np.array([x]), np.array([y]), s.genuine.size, s.impostor.size)[0]:
                x, y = max(x, 1.0 / s.impostor.size), max(y, 1.0 / s.genuine.size)  # drawn at the limit, labelled
                text = f"{point.label}: FMR<{100 / s.impostor.size:.2g}% FNMR {100 * y:.1f}%"
            else:
                text = f"{point.label}: FMR {100 * x:.2g}% FNMR {100 * y:.1f}%"
            ax.plot([probit(x)], [probit(y)], "o", color=line.get_color(), mec="k", ms=6)
            ax.annotate(text, (float(probit(x)), float(probit(y))), textcoords="offset points", xytext=(5, 4),
                        fontsize=7)
    diag = probit(np.array([max(lo_x, lo_y), 0.5]))
    ax.plot(diag, diag, color="0.7", lw=0.8, ls=":", label="FMR = FNMR")
    xt, xl = _axis_ticks(lo_x)
    yt, yl = _axis_ticks(lo_y)
    ax.set_xticks(xt, xl)
    ax.set_yticks(yt, yl)
    ax.set_xlim(float(probit(lo_x)) - 0.1, float(probit(0.5)))
    ax.set_ylim(float(probit(lo_y)) - 0.1, float(probit(0.95)))
    ax.set_xlabel("FMR (%), normal-deviate scale")
    ax.set_ylabel("FNMR (%), normal-deviate scale")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, plt, path)


def plot_roc(series: Sequence[DetSeries], path: Path, title: str = "ROC") -> Path:
    """ROC (TMR against FMR, FMR on a log axis cut at 1/impostor pairs), pair counts in the legend."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    lo_x = min(1.0 / s.impostor.size for s in series)
    for s in series:
        t = np.append(np.unique(np.concatenate([s.genuine, s.impostor])), np.inf)
        fmr = 1.0 - np.searchsorted(np.sort(s.impostor), t, side="left") / s.impostor.size
        tmr = 1.0 - np.searchsorted(np.sort(s.genuine), t, side="left") / s.genuine.size
        keep = fmr >= lo_x - 1e-12
        (line,) = ax.plot(fmr[keep], tmr[keep], label=s.legend)
        for point in s.points:
            x, y = rates_at(s, point.threshold)
            ax.plot([max(x, lo_x)], [1 - y], "o", color=line.get_color(), mec="k", ms=6)
            ax.annotate(point.label, (max(x, lo_x), 1 - y), textcoords="offset points", xytext=(5, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(lo_x, 1.0)
    ax.set_xlabel("FMR")
    ax.set_ylabel("TMR = 1 - FNMR")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, plt, path)


def fnmr_at_fmr_label(fmr: float) -> str:
    """The one name for "FNMR at a fixed FMR" used in plots and tables: ``FNMR at FMR 1 %``, ``... 0.1 %``."""
    return f"FNMR at FMR {100 * fmr:g} %"
