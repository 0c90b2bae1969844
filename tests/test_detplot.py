"""The shared DET/ROC plots: normal-deviate axes, curves cut at the pair counts, operating points marked."""

from __future__ import annotations

import numpy as np
import pytest

from training import detplot


def _series(n_gen: int = 280, n_imp: int = 45) -> detplot.DetSeries:
    rng = np.random.default_rng(0)
    return detplot.DetSeries("fvc", rng.normal(1, 0.5, n_gen), rng.normal(0, 0.5, n_imp),
                             [detplot.OperatingPoint("FMR 1/10,000", 1.5)])


def test_probit_is_the_normal_deviate():
    assert detplot.probit(0.5) == pytest.approx(0.0)
    assert detplot.probit(0.0227501) == pytest.approx(-2.0, abs=1e-4)


def test_det_points_stop_where_the_pair_counts_end():
    s = _series()
    fmr, fnmr = detplot.det_points(s)
    assert fmr.min() >= 1 / 45 - 1e-12  # nothing below one impostor pair's worth
    assert fnmr.min() >= 1 / 280 - 1e-12
    assert fmr.max() < 1 and fnmr.max() < 1


def test_plot_det_and_roc_write_pngs_with_pair_counts_in_the_legend(tmp_path):
    s = _series()
    assert "280 gen / 45 imp pairs" in s.legend
    det = detplot.plot_det([s], tmp_path / "det.png", "DET fvc")
    roc = detplot.plot_roc([s], tmp_path / "roc.png")
    assert det.read_bytes()[:4] == b"\x89PNG" and roc.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.tmp.png"))


def test_empty_scores_are_refused():
    with pytest.raises(ValueError, match="genuine and impostor"):
        detplot.DetSeries("x", [], [0.1])


def test_fnmr_label_names_the_fmr():
    assert detplot.fnmr_at_fmr_label(0.01) == "FNMR at FMR 1 %"
    assert detplot.fnmr_at_fmr_label(0.001) == "FNMR at FMR 0.1 %"
