"""Calibration blocks: the Clopper-Pearson bound, threshold fitting, validation on load, and every shipped card."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from device.calibration.bounds import binomial_cdf, clopper_pearson_upper, max_false_matches
from device.calibration.fields import LEVEL_KEYS, parse_calibration
from device.calibration.fit import calibrate, fit_levels, measure, pooled_threshold
from device.errors import ModelError
from device.fusion import FusionCardError, load_fusion_card
from device.inference.card import load_card, parse_card

MODELS = Path(__file__).resolve().parents[1] / "models"

# (k, n, one-sided 95 % upper bound) from the Beta(k + 1, n - k) 0.95 quantile (SciPy), and the closed form for k = 0
KNOWN = [(0, 10, 0.2588655508930522), (1, 10, 0.39416330243650466), (5, 20, 0.4555824040017489),
         (3, 1000, 0.007735244718479458), (0, 30000, 9.985275683338813e-05), (12, 170240, 0.0001142043252654807),
         (100, 100000, 0.0011806859691734534), (400, 4348296, 9.992307000213453e-05)]


@pytest.mark.parametrize(("k", "n", "expected"), KNOWN)
def test_clopper_pearson_matches_known_values(k, n, expected):
    assert clopper_pearson_upper(k, n) == pytest.approx(expected, rel=1e-8)


def test_zero_false_matches_is_about_three_over_n():
    for n in (1000, 50_000, 4_000_000):
        assert clopper_pearson_upper(0, n) == pytest.approx(-math.expm1(math.log(0.05) / n))
        assert clopper_pearson_upper(0, n) == pytest.approx(3 / n, rel=0.01)
    assert clopper_pearson_upper(0, 0) == 1.0 and clopper_pearson_upper(7, 7) == 1.0
    with pytest.raises(ValueError):
        clopper_pearson_upper(3, 2)
    assert binomial_cdf(0, 10, 0.5) == pytest.approx(0.5 ** 10)


def test_max_false_matches_is_the_largest_supported_count():
    assert max_false_matches(29_000, 1e-4) == -1  # 3/29,000 > 1/10,000: not even zero false matches suffice
    k = max_false_matches(4_348_296, 1e-4)
    assert clopper_pearson_upper(k, 4_348_296) <= 1e-4 < clopper_pearson_upper(k + 1, 4_348_296)


def test_fit_levels_keeps_each_set_and_the_pooled_bound():
    rng = np.random.default_rng(0)
    big = (rng.normal(4, 1, 500), rng.normal(0, 1, 200_000))
    small = (rng.normal(3, 1, 100), np.r_[rng.normal(0, 1, 2_879), 3.9])  # one high impostor in a small set
    t = fit_levels({"synthetic:a": big, "real:b": small})
    assert t["1e-3"] <= t["1e-4"] <= t["2e-5"]
    assert t["1e-4"] > 3.9  # the small set alone allows no false match at 1e-4
    pooled = np.r_[big[1], small[1]]
    assert clopper_pearson_upper(int((pooled >= t["1e-4"]).sum()), pooled.size) <= 1e-4
    assert pooled_threshold(np.zeros(100), 1e-4) is None
    cal = measure({"synthetic:a": big, "real:b": small}, t, "test")
    assert cal.per_set["real:b"]["balanced"]["false_matches"] == 0 and cal.levels["balanced"].supported
    assert cal.strongest_supported() == "secure"


def test_a_level_the_count_cannot_show_is_unsupported():
    rng = np.random.default_rng(1)
    t, cal = calibrate({"real": (rng.normal(3, 1, 200), rng.normal(0, 1, 5_000))}, "small")
    assert cal.levels["convenient"].supported and not cal.levels["balanced"].supported
    assert cal.strongest_supported() == "convenient"


def _block() -> tuple[dict, dict]:
    rng = np.random.default_rng(2)
    t, cal = calibrate({"s": (rng.normal(3, 1, 300), rng.normal(0, 1, 400_000))}, "m", ceiling=None)
    return t, json.loads(json.dumps(cal.to_dict()))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda b: b["levels"].pop("secure"), "exactly"),
    (lambda b: b["levels"]["balanced"].__setitem__("threshold", 0.1), "edited after calibration"),
    (lambda b: b["levels"]["balanced"].__setitem__("fmr_upper95", 1e-9), "Clopper-Pearson"),
    (lambda b: b["levels"]["balanced"].__setitem__("supported", False), "supported must be True"),
    (lambda b: b["levels"]["balanced"].__setitem__("false_matches", 10**9), "false_matches"),
    (lambda b: b["levels"]["balanced"].__setitem__("sets", []), "sets"),
    (lambda b: b.__setitem__("format", "x"), "format"),
])
def test_inconsistent_blocks_are_refused(edit, message):
    t, block = _block()
    parse_calibration(block, t, "card")
    bad = copy.deepcopy(block)
    edit(bad)
    with pytest.raises(ModelError, match=message):
        parse_calibration(bad, t, "card")


def test_model_card_validates_its_block_on_load(tmp_path):
    raw = json.loads((MODELS / "vein.json").read_text())
    raw["calibration"]["levels"]["secure"]["fnmr"] = 2.0
    with pytest.raises(ModelError, match="fnmr"):
        parse_card(raw, tmp_path / "vein.json")
    raw = json.loads((MODELS / "vein.json").read_text())
    raw["thresholds"]["1e-4"] = raw["thresholds"]["1e-4"] - 0.01
    with pytest.raises(ModelError, match="edited after calibration"):
        parse_card(raw, tmp_path / "vein.json")


def _shipped_cards() -> list[Path]:
    return sorted(p for p in MODELS.glob("*.json"))


def _decision_cards() -> list[Path]:
    """Cards that set a decision threshold (a segmentation card has none: it is checked by its own tests)."""
    return [p for p in _shipped_cards() if json.loads(p.read_text()).get("format") != "biolock-segment-card/1"]


@pytest.mark.parametrize("path", _decision_cards(), ids=lambda p: p.name)
def test_every_shipped_card_has_consistent_calibration(path):
    raw = json.loads(path.read_text())
    if str(raw.get("format", "")).startswith("biolock-fusion-card"):
        cal = load_fusion_card(path).calibration
        thresholds = load_fusion_card(path).thresholds
    elif str(raw.get("format", "")).startswith("biolock-small-sensor-card"):
        from device.small_sensor import load_card as load_small_card

        small = load_small_card(path)
        cal, thresholds = small.calibration, small.thresholds
    else:
        card = load_card(path)
        cal, thresholds = card.calibration, card.thresholds
    assert cal is not None, f"{path.name} has no calibration block"
    for level, key in LEVEL_KEYS.items():
        lv = cal.levels[level]
        assert lv.threshold == pytest.approx(thresholds[key])
        assert set(lv.sets) == set(cal.per_set), "the pooled counts name exactly the per-set entries"
        assert lv.impostor_pairs == sum(cal.per_set[s][level]["impostor_pairs"] for s in lv.sets)
        assert lv.false_matches == sum(cal.per_set[s][level]["false_matches"] for s in lv.sets)
        real = [s for s in lv.sets if not s.startswith("synthetic:")]
        synthetic = [s for s in lv.sets if s.startswith("synthetic:")]
        assert synthetic and (real or lv.held_out), "shipped cards are measured on real sets and synthetic identities"
        for s in lv.sets:  # the claim holds on each set where its count can show it
            per = cal.per_set[s][level]
            assert per["false_matches"] <= math.floor(lv.claim * per["impostor_pairs"] + 1e-9)


def test_fusion_card_with_a_broken_block_is_refused(tmp_path):
    raw = json.loads((MODELS / "fingerprint_minutiae.json").read_text())
    raw["calibration"]["levels"]["balanced"]["supported"] = not raw["calibration"]["levels"]["balanced"]["supported"]
    p = tmp_path / "c.json"
    p.write_text(json.dumps(raw))
    with pytest.raises(FusionCardError, match="supported"):
        load_fusion_card(p)


def _manifest(root: Path, dataset: str, identities: int, impressions: int, offset: int) -> Path:
    import cv2
    from models_fixture import finger_image

    rows = ["dataset,relpath,identity,impression"]
    (root / dataset).mkdir(parents=True, exist_ok=True)
    for i in range(identities):
        for k in range(impressions):
            cv2.imwrite(str(root / dataset / f"{i}_{k}.png"), finger_image(offset + i, k))
            rows.append(f"{dataset},{i}_{k}.png,f{i},{k + 1}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_calibrate_card_command_writes_a_valid_card(tmp_path):
    from click.testing import CliRunner

    from training.card_calibration import calibrate_card_cmd

    raw = json.loads((MODELS / "fingerprint.json").read_text())
    shutil_dir = tmp_path / "m"
    shutil_dir.mkdir()
    (shutil_dir / raw["file"]).write_bytes((MODELS / raw["file"]).read_bytes())
    card = shutil_dir / "fingerprint.json"
    card.write_text(json.dumps(raw))
    real = _manifest(tmp_path / "real", "fingerprint/sensorx", 4, 3, 10)
    synth = _manifest(tmp_path / "synth", "fingerprint/synthetic-r307", 4, 3, 50)
    res = CliRunner().invoke(calibrate_card_cmd, [str(card), "--data", str(real), "--synthetic", str(synth),
                                                  "--no-progress"])
    assert res.exit_code == 0, res.output
    loaded = load_card(card)
    lv = loaded.calibration.levels["balanced"]
    assert set(lv.sets) == {"fingerprint/sensorx", "synthetic:fingerprint/synthetic-r307"}
    assert lv.impostor_pairs == 2 * (12 * 11 // 2 - 12) and not lv.supported
    assert all(-1.0 <= t <= 1.0 for t in loaded.thresholds.values())


def test_a_fusion_card_is_recalibrated_on_fused_scores():
    from training.card_calibration import calibrate_fusion_card, fused_from_raw

    card = load_fusion_card(MODELS / "fingerprint_minutiae.json")
    rng = np.random.default_rng(5)
    g, i = fused_from_raw(card, {"fingerprint": rng.uniform(0.8, 1, 50), "minutiae": rng.uniform(40, 90, 50)},
                          {"fingerprint": rng.uniform(-0.2, 0.5, 40_000), "minutiae": rng.uniform(0, 20, 40_000)})
    new = calibrate_fusion_card(card, {"synthetic:t": (g, i)})
    cal = new.calibration
    assert cal.levels["balanced"].impostor_pairs == 40_000 and new.thresholds["1e-4"] > float(np.max(i)) - 1e-9


def test_held_out_verdicts():
    from device.calibration.fields import held_out_verdict

    assert held_out_verdict(0, 9_999, 1e-4) == "inconclusive"  # one false match would already exceed the claim
    assert held_out_verdict(0, 1_087_800, 1e-4) == "holds"
    assert held_out_verdict(108, 1_087_800, 1e-4) == "holds"  # 0.0099 %, bound below 3x the claim
    assert held_out_verdict(198, 1_087_800, 1e-4) == "refutes"  # 0.018 % > 0.01 %
    assert held_out_verdict(1, 10_878, 1e-4) == "inconclusive"  # within the claim, but the bound is 4.4e-4
    assert held_out_verdict(0, 10_878, 1e-4) == "holds"  # bound 2.75e-4 <= 3x the claim
    assert held_out_verdict(3, 10_878, 1e-4) == "refutes"
    assert held_out_verdict(2, 10_878, 2e-5) == "refutes"  # 0.2 expected: 2 happen < 2 % of the time
    assert held_out_verdict(1, 10_878, 2e-5) == "inconclusive"


def test_a_held_out_set_that_breaks_a_claim_withdraws_the_level_without_moving_thresholds():
    rng = np.random.default_rng(3)
    fit_on = {"synthetic:a": (rng.normal(4, 1, 400), rng.normal(0, 1, 400_000))}
    leaky = np.r_[rng.normal(0, 0.5, 200_000), np.full(100, 9.0)]  # 100 strangers above every threshold
    t_alone, alone = calibrate(fit_on, "m")
    t, cal = calibrate(fit_on, "m", held_out={"real:held": (rng.normal(4, 1, 300), leaky)})
    assert t == t_alone, "a held-out set never moves a threshold"
    assert alone.levels["secure"].supported and not cal.levels["secure"].supported
    assert cal.levels["convenient"].supported  # 100 of 200,100 is below 1e-3: that claim holds
    assert cal.levels["secure"].refuted_by() == ["real:held"]
    assert cal.strongest_supported() == "convenient"
    block = json.loads(json.dumps(cal.to_dict()))
    assert parse_calibration(block, t, "card").levels["balanced"].held_out["real:held"]["false_matches"] == 100
    with pytest.raises(ValueError, match="both fitted on and held out"):
        measure(fit_on, t, "m", held_out=fit_on)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.__setitem__("verdict", "holds"), "verdict must be 'refutes'"),
    (lambda r: r.__setitem__("false_matches", 1), "fmr"),
    (lambda r: r.__setitem__("fnmr", 1.5), "fnmr"),
])
def test_a_forged_held_out_result_is_refused(edit, message):
    rng = np.random.default_rng(4)
    leaky = np.r_[rng.normal(0, 0.5, 200_000), np.full(100, 9.0)]
    t, cal = calibrate({"s": (rng.normal(4, 1, 300), rng.normal(0, 1, 400_000))}, "m",
                       held_out={"h": (rng.normal(4, 1, 300), leaky)})
    block = json.loads(json.dumps(cal.to_dict()))
    edit(block["levels"]["balanced"]["held_out"]["h"])
    with pytest.raises(ModelError, match=message):
        parse_calibration(block, t, "card")
    block = json.loads(json.dumps(cal.to_dict()))
    block["levels"]["balanced"]["supported"] = True  # a refuted level cannot be claimed
    with pytest.raises(ModelError, match="refuted on held-out h"):
        parse_calibration(block, t, "card")


def test_a_refuted_level_is_refused_at_start_naming_the_set():
    from device.calibration.policy import decision_info
    from device.errors import ConfigError

    rng = np.random.default_rng(6)
    leaky = np.r_[rng.normal(0, 0.5, 200_000), np.full(100, 9.0)]
    t, cal = calibrate({"s": (rng.normal(4, 1, 300), rng.normal(0, 1, 400_000))}, "m",
                       held_out={"fingerprint/sensor-y": (rng.normal(4, 1, 300), leaky)})
    with pytest.raises(ConfigError, match="held-out set fingerprint/sensor-y.*'convenient'"):
        decision_info("m", "card.json", cal, "balanced", t["1e-4"])
    assert decision_info("m", "card.json", cal, "convenient", t["1e-3"]).supported
    info = decision_info("m", "card.json", cal, "balanced", t["1e-4"], allow_unsupported=True)
    assert info.override and info.refuted_by == ("fingerprint/sensor-y",)
    assert "broken on held-out fingerprint/sensor-y" in info.summary()


def test_calibrate_card_command_holds_a_set_out(tmp_path):
    from click.testing import CliRunner

    from training.card_calibration import calibrate_card_cmd

    raw = json.loads((MODELS / "fingerprint.json").read_text())
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / raw["file"]).write_bytes((MODELS / raw["file"]).read_bytes())
    card = folder / "fingerprint.json"
    card.write_text(json.dumps(raw))
    real = _manifest(tmp_path / "real", "fingerprint/sensorx", 4, 3, 10)
    held = _manifest(tmp_path / "held", "fingerprint/sensory", 4, 3, 30)
    synth = _manifest(tmp_path / "synth", "fingerprint/synthetic-r307", 4, 3, 50)
    args = [str(card), "--data", str(real), "--data", str(held), "--synthetic", str(synth), "--no-progress"]
    res = CliRunner().invoke(calibrate_card_cmd, [*args, "--held-out", "fingerprint/sensory",
                                                  "--held-out-protocol", "fvc"])
    assert res.exit_code == 0, res.output
    lv = load_card(card).calibration.levels["convenient"]
    assert set(lv.sets) == {"fingerprint/sensorx", "synthetic:fingerprint/synthetic-r307"}
    assert lv.held_out["fingerprint/sensory"]["impostor_pairs"] == 4 * 3 // 2  # FVC protocol: first impressions
    assert "held out fingerprint/sensory" in res.output
    bad = CliRunner().invoke(calibrate_card_cmd, [*args, "--held-out", "fingerprint/nothere"])
    assert bad.exit_code != 0 and "names no scored set" in bad.output
