"""``biolock eval``: pair protocols, the pure scoring, the decision registry and the command on small sets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from models_fixture import finger_image

from device.cli import main
from device.errors import ConfigError
from device.evaluation import DECISIONS, DecisionOptions, names, open_decision
from device.evaluation.datasets import genuine_pairs, impostor_pairs, load_sets
from device.evaluation.scoring import eer_linear, level_rates, summarize_scores


def _write_set(root: Path, identities: int, impressions: int, dataset: str = "fingerprint/synth",
               saturated: tuple[int, int] | None = None) -> Path:
    rows = ["dataset,relpath,identity,impression"]
    for i in range(identities):
        for k in range(1, impressions + 1):
            rel = f"{i}_{k}.png"
            img = finger_image(i, k)
            if saturated == (i, k):
                img = np.full_like(img, 255)
            (root / dataset).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / dataset / rel), img)
            rows.append(f"{dataset},{rel},f{i},{k}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_pair_counts_match_the_protocols():
    labels = [f"f{i}" for i in range(10) for _ in range(8)]
    imps = [str(k) for _ in range(10) for k in range(1, 9)]
    assert len(genuine_pairs(labels)) == 280
    assert len(impostor_pairs(labels, imps, "fvc")) == 45
    every = impostor_pairs(labels, imps, "all")
    assert len(every) == 80 * 79 // 2 - 280 == 2880
    lab = np.asarray(labels)
    assert np.all(lab[every[:, 0]] != lab[every[:, 1]]) and np.all(every[:, 0] < every[:, 1])


def test_eer_linear_and_levels_on_known_scores():
    # genuine 1..10, impostors -0.5..8.5: at t = 5 both FMR and FNMR are exactly 4/10
    assert eer_linear(np.arange(1, 11.0), np.arange(0, 10.0) - 0.5) == pytest.approx(0.4)
    sep = summarize_scores([2.0, 3.0], [0.0, 1.0], {"1e-3": 1.5, "1e-4": 2.5, "2e-5": 3.5})
    assert sep["eer_fvc"] == 0 and sep["eer_linear"] == 0 and sep["fnmr_at_fmr_1e-3"] is None
    assert sep["levels"]["balanced"]["fnmr"] == 0.5 and sep["levels"]["secure"]["fnmr"] == 1.0
    r = level_rates(np.ones(10), np.r_[np.zeros(999), 1.0], 1.0, 1e-3)
    assert r["false_matches"] == 1 and r["fmr"] == pytest.approx(1e-3)
    assert r["fmr_upper95"] == pytest.approx(0.004735, rel=1e-3) and not r["bound_reaches_claim"]


def test_eer_linear_interpolates_between_thresholds():
    # one genuine and one impostor per side: FMR-FNMR goes 1 -> 0 -> -1; the crossing is observed exactly
    assert eer_linear([1.0, 3.0], [0.0, 2.0]) == pytest.approx(0.5)
    assert eer_linear([2.0], [1.0]) == 0.0
    # FMR - FNMR goes +1/6 (t = 2: FMR 1/2, FNMR 1/3) to -1/6 (t = 2.5: 1/2, 2/3): half way, FMR = FNMR = 1/2
    assert eer_linear([1.0, 2.0, 3.0], [0.0, 2.5]) == pytest.approx(0.5)
    # from t = 2 (FMR 1/3, FNMR 0) to t = 2.5 (FMR 1/3, FNMR 1/2): FNMR reaches 1/3 two thirds of the way
    assert eer_linear([2.0, 3.0], [0.0, 1.0, 2.5]) == pytest.approx(1 / 3)


def test_unknown_decision_names_the_known_ones():
    with pytest.raises(ConfigError, match="embedding"):
        open_decision("nope", DecisionOptions("fingerprint"))
    assert {"device", "embedding", "fused", "nbis"} <= set(names())


def test_a_registered_decision_is_scored_with_failures_to_acquire(tmp_path, monkeypatch):
    monkeypatch.setitem(DECISIONS, "meangrey", "eval_decision_fixture:meangrey_decision")
    data = _write_set(tmp_path / "d", 4, 3, saturated=(1, 2))
    res = CliRunner().invoke(main, ["eval", str(data), "--decision", "meangrey", "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    s = out["sets"][0]
    assert out["decision"] == "meangrey" and s["failures_to_acquire"] == 1 and s["images"] == 12
    assert s["genuine_pairs_lost_to_fta"] == 2
    assert s["protocols"]["all"]["genuine_pairs"] == 10 and s["protocols"]["all"]["impostor_pairs"] == 66 - 12 - 9
    assert s["protocols"]["fvc"]["impostor_pairs"] == 6
    assert set(s["protocols"]["all"]["levels"]) == {"convenient", "balanced", "secure"}


def test_embedding_decision_on_the_shipped_model(tmp_path):
    data = _write_set(tmp_path / "d", 3, 3, saturated=(2, 3))  # a blank capture: a failure to acquire
    sets = load_sets(data, "fingerprint")
    assert [s.name for s in sets] == ["fingerprint/synth"]
    res = CliRunner().invoke(main, ["eval", str(data), "--decision", "embedding", "--protocol", "all", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "failures to acquire 1" in res.output
    assert "fingerprint-mobile@" in res.output and "genuine 7 / impostor 21 pairs" in res.output
    assert "balanced" in res.output and "95 % bound" in res.output


def test_the_device_decision_in_small_sensor_mode_is_the_partial_matcher_without_per_touch_levels(tmp_path):
    data = _write_set(tmp_path / "d", 3, 3)
    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[matching]\nminutiae = "partial"\n')
    res = CliRunner().invoke(main, ["--config", str(cfg), "eval", str(data), "--protocol", "all", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "small sensor" in res.output and "biolock-partial-orb" in res.output
    assert "fingerprint-mobile@" not in res.output  # the embedding is not what decides in small-sensor mode
    assert "genuine 9 / impostor 27 pairs" in res.output and "95 % bound" not in res.output  # no levels scored


def test_plots_are_written_or_the_error_says_how_to_get_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(DECISIONS, "meangrey", "eval_decision_fixture:meangrey_decision")
    data = _write_set(tmp_path / "d", 3, 3)
    res = CliRunner().invoke(main, ["eval", str(data), "--decision", "meangrey", "--no-progress", "--protocol", "fvc",
                                    "--plots", str(tmp_path / "p")])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert res.exit_code == 2 and "pip install" in res.output
        return
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "fingerprint_synth_fvc_det.png", "fingerprint_synth_fvc_hist.png", "fingerprint_synth_fvc_roc.png"]


def test_missing_data_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "empty"), "--decision", "embedding"])
    assert res.exit_code == 2 and res.output.startswith("error:")


@pytest.mark.realdata
def test_embedding_on_a_real_fvc_set_counts_every_pair(shared_data):
    res = CliRunner().invoke(main, ["eval", str(shared_data), "--set", "fingerprint/fvc2002/DB1_B", "--decision",
                                    "embedding", "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)["sets"][0]
    assert s["protocols"]["fvc"]["genuine_pairs"] == 280 and s["protocols"]["fvc"]["impostor_pairs"] == 45
    assert s["protocols"]["all"]["impostor_pairs"] == 2880 and s["protocols"]["fvc"]["fnmr_at_fmr_1e-3"] is None
