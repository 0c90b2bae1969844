"""Calibration: statistics with known answers, the verdict, and an end-to-end run on a small stand-in 'real' set."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from device.errors import DatasetError
from training.calibrate import evaluate_set, judge, real_sets, run_calibration, to_markdown
from training.synth import generate_dataset
from training.synth.stats import fingerprint_foreground, fingerprint_stats, ridge_period, vein_stats


def _stripes(period: float, shape=(256, 256), angle=0.5) -> np.ndarray:
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return (128 + 80 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)).astype(np.uint8)


@pytest.mark.parametrize("period", [7.0, 9.0, 11.5])
def test_ridge_period_of_stripes(period):
    assert ridge_period(_stripes(period)) == pytest.approx(period, rel=0.06)


def test_foreground_is_the_striped_part():
    img = _stripes(9.0)
    img[:, 128:] = 200
    fg = fingerprint_foreground(img)
    assert 0.4 < fg.mean() < 0.6
    s = fingerprint_stats(img)
    assert s["grey_mean"] == pytest.approx(img.mean())
    v = vein_stats(img, pattern=np.zeros_like(img))
    assert v["vessel_fraction"] == 0.0 and 0 < v["foreground"] < 1


def _row(name, kind, eer):
    return {"dataset": name, "kind": kind, "yardstick": "y", "eer": eer, "genuine_pairs": 28, "impostor_pairs": 45,
            "ridge_period": 9.0, "foreground": 0.8, "grey_mean": 150.0, "grey_std": 40.0}


def test_verdict_uses_the_real_range():
    rows = [_row("a", "real", 0.03), _row("b", "real", 0.09), _row("s1", "synthetic", 0.05),
            _row("s2", "synthetic", 0.12)]
    judge(rows)
    assert [r["in_real_range"] for r in rows] == [None, None, True, False]
    md = to_markdown(rows, "fingerprint")
    assert "| s1 | synthetic | y | 5.00 | 28 / 45 |" in md and "3.00-9.00 %" in md


def test_single_real_set_gets_a_tolerance_band():
    rows = [_row("a", "real", 0.04), _row("s", "synthetic", 0.055)]
    judge(rows)
    assert rows[1]["in_real_range"] is True and rows[0]["real_range"] == pytest.approx([0.02, 0.06])


def _stand_in_real(tmp_path, modality, profile, ids, imps):
    """A 'real' folder in the shared-data layout, made from synthetic images of another seed."""
    m = generate_dataset(modality, ids, imps, profile, 99, tmp_path / "gen", workers=1, progress=False)
    real = tmp_path / "real"
    dataset = f"{modality}/standin"
    shutil.copytree(m.parent / f"synth-{modality}-{profile}", real / dataset)
    rows = list(csv.DictReader(m.open()))
    with (real / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "relpath", "identity", "impression"])
        for r in rows:
            w.writerow([dataset, r["relpath"], f"DB9/{r['identity']}", r["impression"]])
    return real


def test_end_to_end_vein_calibration(tmp_path):
    real = _stand_in_real(tmp_path, "vein", "roi", 3, 3)
    res = run_calibration("vein", real, tmp_path / "out", identities=3, impressions=3, seeds=[1], workers=1)
    assert [r["kind"] for r in res.rows] == ["real", "synthetic"]
    assert res.rows[0]["dataset"] == "vein/standin/DB9"
    assert all(r["genuine_pairs"] == 9 and r["impostor_pairs"] == 3 for r in res.rows)
    assert all(0.0 <= r["eer"] <= 1.0 for r in res.rows)
    saved = json.loads(res.json_path.read_text())
    assert saved["rows"][1]["eer"] == res.rows[1]["eer"]
    assert "Miura" in res.markdown_path.read_text()
    sheet = cv2.imread(str(res.sheet_path), cv2.IMREAD_GRAYSCALE)
    assert sheet is not None and sheet.shape[0] > 2 * 150  # two rows of tiles
    assert (tmp_path / "out" / "synthetic_sheet.png").is_file()
    assert list((tmp_path / "out" / "cache").glob("*.json"))  # real results are cached for re-runs


@pytest.mark.slow  # nbis-py takes ~6 s to create its extractor (it loads NFIQ2 models)
def test_nbis_yardstick_separates_synthetic_fingers(tmp_path):
    pytest.importorskip("nbis")
    m = generate_dataset("fingerprint", 3, 3, "r307", 4, tmp_path / "fp", workers=1, progress=False)
    from training.calibrate import synthetic_set

    row = evaluate_set(synthetic_set(m, "tiny"), "fingerprint", workers=1)
    assert row["genuine_pairs"] == 9 and row["impostor_pairs"] == 3
    assert row["failed_extractions"] == 0
    assert row["eer"] < 0.5
    assert 6.0 < row["ridge_period"] < 13.0


def test_missing_real_manifest_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="manifest"):
        real_sets(tmp_path, "fingerprint")


@pytest.mark.realdata
def test_real_fingerprint_sets_are_split_per_sensor(shared_data):
    sets = real_sets(shared_data, "fingerprint")
    names = [s.name for s in sets]
    import csv

    with open(shared_data / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["dataset"].startswith("fingerprint/")]
    # one set per sensor: each FVC DBn_B folder is its own sensor, any other dataset is one sensor
    expected = {f"{r['dataset']}/{r['relpath'].split('/')[0]}" if "/fvc" in r["dataset"] else r["dataset"]
                for r in rows}
    assert "fingerprint/fvc2002/DB2_B" in names and sorted(names) == sorted(expected)
    fvc = [s for s in sets if "/fvc" in s.name]
    assert fvc and all(len(set(s.labels)) == 10 and len(s.paths) == 80 for s in fvc)
