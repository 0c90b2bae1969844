"""``biolock bench`` runs every stage on the fixture model and reports numbers (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from models_fixture import fixture_models  # noqa: F401 - fixture

from device.cli import main

MODELS = Path(__file__).resolve().parents[1] / "models"

STAGES = {"decode", "preprocess", "quality", "embed_int8_1t", "embed_int8_2t", "embed_float_1t", "embed_float_2t",
          "match_1to1", "identify_100", "identify_1000", "store_read_user", "store_open_gallery_1000",
          "verify_e2e", "verify_to_decision", "identify_e2e_1000"}


def test_bench_json_has_every_stage_and_the_process_numbers(fixture_models, tmp_path):  # noqa: F811
    result = CliRunner().invoke(main, ["bench", "--model", str(fixture_models.int8_card), "--float-model",
                                       str(fixture_models.float_card), "--repeat", "3", "--sizes", "100,1000",
                                       "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert STAGES <= set(report["stages"])
    assert {"fp_extract", "fp_compare", "fp_extract_compare", "fp_identify_1000x5_cold"} <= set(report["stages"])
    # issue 18: the small-sensor path, on 192x192 touches: all placements stitched within the 16 KB budget
    assert {"partial_extract", "partial_compare", "partial_verify_16kb", "partial_identify_20"} <= set(report["stages"])
    assert report["partial"]["placements"] == 10 and 10_000 < report["partial"]["template_bytes"] <= 16 * 1024
    assert report["partial"]["genuine_score"] >= 14  # the bench's own finger: above the card's balanced threshold
    for name, s in report["stages"].items():
        assert s["n"] >= 1 and 0 < s["median_ms"] <= s["p95_ms"] * 1.0001, name
    assert report["verify_accepted"] is True
    assert 512 < report["template_bytes"] < 1024  # 128 float32 + nonce + tag, sealed
    assert report["model_bytes"] == (fixture_models.int8_card.parent / "fixture_int8.tflite").stat().st_size
    assert report["startup_detail"]["tensorflow"] is False and report["startup_detail"]["accepted"] is True
    assert report["rss_mb"] > 10 and report["startup_s"] > 0
    # the fixture model has no minutiae card beside it: the configured decision is the embedding alone (issue 16)
    assert report["decision"]["matcher"] == report["model"] and report["decision"]["second_matcher"] is False
    assert {"decision_verify_1t", "decision_to_decision_1t", "decision.embed"} <= set(report["stages"])
    assert "decision.minutiae" not in report["stages"] and report["decision"]["accepted"] is True


def test_bench_table_and_missing_model(fixture_models):  # noqa: F811
    result = CliRunner().invoke(main, ["bench", "--model", str(fixture_models.int8_card), "--repeat", "2",
                                       "--sizes", "100", "--no-startup"])
    assert result.exit_code == 0, result.output
    assert "identify_100" in result.output and "median ms" in result.output and "embed_float" not in result.output
    result = CliRunner().invoke(main, ["bench", "--repeat", "1"])  # no shipped model in a fresh checkout
    if result.exit_code != 0:
        assert result.exit_code == 2 and "--model" in result.output


def test_bench_a_vein_card_with_an_image(fixture_models, tmp_path):  # noqa: F811
    import cv2
    from models_fixture import vein_image

    image = tmp_path / "vein.png"
    cv2.imwrite(str(image), vein_image(1, 0))
    result = CliRunner().invoke(main, ["bench", "--model", str(fixture_models.vein_card), "--image", str(image),
                                       "--repeat", "2", "--sizes", "100", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["verify_accepted"] is True and "startup_error" not in report
    assert report["startup_detail"]["accepted"] is True and "quality" not in report["stages"]
    result = CliRunner().invoke(main, ["bench", "--model", str(fixture_models.vein_card), "--repeat", "1"])
    assert result.exit_code == 2 and "--image" in result.output  # the synthetic bench image is a fingerprint


def test_bench_times_the_decision_the_shipped_models_make(tmp_path):
    """Issue 16: the decision_* rows time the configured decision, second matcher and fusion included."""
    import cv2

    from training.synth.dataset import identity_seed
    from training.synth.vein import render_impression
    from training.synth.vein_frame import render_frame

    ident = identity_seed(21, 0, "vein")
    frame = tmp_path / "vein.png"
    cv2.imwrite(str(frame), render_frame(render_impression(ident, 0, "roi"), "normal", seed=ident))
    for extra, second in (([], "biolock-mcc"), (["--model", str(MODELS / "vein.json"), "--image", str(frame)],
                                                "vein-lines")):
        result = CliRunner().invoke(main, ["bench", *extra, "--repeat", "2", "--sizes", "100", "--no-startup",
                                           "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout[result.stdout.index("{"):])
        decision, stages = report["decision"], report["stages"]
        assert decision["second_matcher"] is True and f"+ {second}" in decision["matcher"], decision
        assert decision["accepted"] is True and decision["threads"] == 1, decision
        for row in ("decision_verify_1t", "decision_to_decision_1t", "decision.preprocess", "decision.embed",
                    "decision.minutiae", "decision.match"):
            assert stages[row]["n"] >= 1 and 0 < stages[row]["median_ms"] <= stages[row]["p95_ms"] * 1.0001, row
        # the whole decision costs at least its embedding and its second matcher's extraction
        assert stages["decision_to_decision_1t"]["median_ms"] >= stages["decision.minutiae"]["median_ms"]


def test_the_small_sensor_rows_say_why_they_are_missing_when_no_touch_enrols():
    import numpy as np

    from device.commands.bench import timed
    from device.fingerprint.partial_timing import partial_stages

    blank = lambda finger, impression: np.full((192, 192), 128, np.uint8)  # noqa: E731 - a sensor seeing nothing
    stages, facts = partial_stages(blank, timed, 1)
    assert stages == {} and "could be enrolled" in facts["error"]


def test_in_small_sensor_mode_the_decision_rows_point_to_the_partial_rows(tmp_path):
    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[matching]\nminutiae = "partial"\n')
    result = CliRunner().invoke(main, ["--config", str(cfg), "bench", "--repeat", "2", "--sizes", "100",
                                       "--no-startup"])
    assert result.exit_code == 0, result.output
    assert "decision rows missing: small-sensor mode" in result.output and "partial_verify_16kb" in result.output
    assert "decision_verify_1t" not in result.output
