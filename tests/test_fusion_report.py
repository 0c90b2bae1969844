"""``biolock train fusion-report``: the report on small fixture sets, and the command's errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from fusion_fixtures import ridge_image, vein_image

from device.cli import main
from device.fusion import load_fusion_card
from training.fusion.sets import ImageSet
from training.fusion_report import build_report


def fp_set(n_id: int = 5, per: int = 3) -> ImageSet:
    images, labels, imps = [], [], []
    for s in range(n_id):
        for k in range(per):
            base = ridge_image(s, size=160, noise=0.02).astype(np.float32)
            noisy = base + np.random.default_rng(1000 * s + k).normal(0, 12, base.shape)
            images.append(np.roll(np.clip(noisy, 0, 255).astype(np.uint8), k, axis=1))
            labels.append(f"f{s}")
            imps.append(str(k + 1))
    return ImageSet("synthetic fingerprint (fixture)", "fingerprint", images, labels, imps, "test fixture")


def vein_set(n_id: int = 5, per: int = 3) -> ImageSet:
    images = [vein_image(s, shape=(100, 300), impression=k) for s in range(n_id) for k in range(per)]
    return ImageSet("synthetic vein (fixture)", "vein", images, [f"v{s}" for s in range(n_id) for _ in range(per)],
                    [str(k + 1) for _ in range(n_id) for k in range(per)], "test fixture")


@pytest.mark.slow
def test_report_has_every_table_with_pair_counts(tmp_path):
    fp, vein = fp_set(4, 3), vein_set(4, 3)
    pairs = [(fp.name, vein.name, "synthetic fingerprint + vein (fixture)", "identity k has both")]
    report = build_report([fp, vein], pairs, tmp_path, enhancement=True, rlt_iterations=100,
                          card_path=tmp_path / "card.json")
    md = (tmp_path / "report.md").read_text()
    data = json.loads((tmp_path / "report.json").read_text())
    for heading in ("## Target", "## Enhancement", "## Unimodal accuracy", "## Feature level vs score level",
                    "## FAR / FRR / EER per scheme", "## Per-stage time"):
        assert heading in md
    names = [s["name"] for s in data["sets"]]
    assert names == [fp.name, vein.name, "synthetic fingerprint + vein (fixture)"]
    vein_matchers = {r["scheme"] for r in data["sets"][1]["verification"] if r["kind"] == "single"}
    assert vein_matchers == {"loggabor", "dog", "miura", "line-tracking", "wide-line"}
    multi = {r["scheme"] for r in data["sets"][2]["verification"] if r["kind"] == "single"}
    assert "fp:loggabor" in multi and "vein:miura" in multi
    for s in data["sets"]:
        counts = {(r["genuine_pairs"], r["impostor_pairs"]) for r in s["verification"]}
        assert counts == {(4 * 3, 1 + 1)}  # 2 folds of 2 identities: 3 genuine pairs per identity, 1 impostor
        # all impostor pairs: 2 identities x 3 impressions per fold -> 3 x 3 cross pairs, two folds
        assert {r["impostor_pairs_all"] for r in s["verification"]} == {2 * 9}
        kinds = {r["kind"] for r in s["verification"]}
        assert kinds == {"single", "feature", "score", "greedy", "val-single"}
        assert "12 / 2" in md and "12 / 18" in md
    ident = data["sets"][0]["identification"]
    assert {r["classifier"] for r in ident} == {"svm-rbf", "knn", "tree", "cosine"}
    assert all(0 <= r["rank1"] <= 1 and r["probes"] == 8 for r in ident)  # 1 enrols, 2 probe
    assert {t["set"] for t in report["targets"]} == set(names)
    assert all(t["status"] in ("lower", "equal", "equal (both 0 %)", "higher") for t in report["targets"])
    assert len(report["summary_lines"]) == len(names) and "### Summary lines" in md
    assert all("FVC pairs" in line and "all impostor pairs" in line for line in report["summary_lines"])
    stages = {k.split(" ")[0] for k in data["timings"]}
    assert {"enhancement", "loggabor", "dog", "miura", "line-tracking", "wide-line", "fusion",
            "classification"} <= stages
    assert set(data["enhancement_winner"]) == {"fingerprint", "vein"}
    assert {r["method"] for r in data["enhancement"]} == {"none", "clahe", "histeq", "stretch", "smooth"}
    assert report["card"] is None and not (tmp_path / "card.json").exists()  # no deep models: no card


def test_report_writes_a_card_when_both_modalities_have_deep_features(tmp_path, monkeypatch):
    """A stand-in embedder (a fixed random projection) exercises the card path; the device loads the card."""

    class Projection:
        model_id = "projection@0+000000000000"
        input_size = (32, 32)

        def __init__(self, seed: int) -> None:
            self.w = np.random.default_rng(seed).normal(size=(32 * 32, 16)).astype(np.float32)

        def embed(self, image: np.ndarray) -> np.ndarray:
            v = image.reshape(-1) @ self.w
            return v / np.linalg.norm(v)

    fp, vein = fp_set(4, 3), vein_set(4, 3)
    pairs = [(fp.name, vein.name, "both", "fixture")]
    report = build_report([fp, vein], pairs, tmp_path, {"fingerprint": Projection(1), "vein": Projection(2)},
                          enhancement=False, maps=False, card_path=tmp_path / "card.json")
    card = load_fusion_card(report["card"], expected_matchers=["fingerprint", "vein"])
    assert card.matchers[0].model == "projection@0+000000000000"
    assert card.rule == "weighted_sum" and card.matchers[0].normalizer.method == report["primary_scheme"].split("/")[1]


def test_handcrafted_features_are_cached_and_reused(tmp_path):
    from training.fusion.extract import extract_all

    images = fp_set(2, 2).images
    first = extract_all(images, "fingerprint", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("fingerprint-*.pkl"))) == 1
    again = extract_all(images, "fingerprint", cache_dir=tmp_path)
    np.testing.assert_array_equal(first.blocks["loggabor"], again.blocks["loggabor"])
    assert again.timings_ms == first.timings_ms  # loaded, not re-measured
    other = extract_all(images[:3], "fingerprint", cache_dir=tmp_path)
    assert other.blocks["loggabor"].shape[0] == 3 and len(list(tmp_path.glob("*.pkl"))) == 2


def test_command_help_and_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "fusion-report", "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "biolock train fusion-report" in result.output
    result = runner.invoke(main, ["train", "fusion-report", "--out", str(tmp_path / "o"), "--no-real",
                                  "--synthetic-identities", "0"])
    assert result.exit_code == 2 and "nothing to measure" in result.output
    result = runner.invoke(main, ["train", "fusion-report", "--out", str(tmp_path / "o"), "--synthetic-identities",
                                  "0", "--real", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest.csv" in result.output
    result = runner.invoke(main, ["train", "fusion-report", "--out", str(tmp_path / "o"), "--no-real",
                                  "--fp-model", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "cannot load the fingerprint model" in result.output
    assert not (tmp_path / "o" / "report.md").exists()
