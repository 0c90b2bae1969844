"""``biolock bench`` runs every stage on the fixture model and reports numbers (no timing assertions)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from models_fixture import fixture_models  # noqa: F401 - fixture

from device.cli import main

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
    for name, s in report["stages"].items():
        assert s["n"] >= 1 and 0 < s["median_ms"] <= s["p95_ms"] * 1.0001, name
    assert report["verify_accepted"] is True
    assert 512 < report["template_bytes"] < 1024  # 128 float32 + nonce + tag, sealed
    assert report["model_bytes"] == (fixture_models.int8_card.parent / "fixture_int8.tflite").stat().st_size
    assert report["startup_detail"]["tensorflow"] is False and report["startup_detail"]["accepted"] is True
    assert report["rss_mb"] > 10 and report["startup_s"] > 0


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
