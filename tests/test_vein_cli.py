"""``biolock vein regions`` (the montage) and ``biolock train vein-card`` (the fusion card builder), end to end."""

from __future__ import annotations

import json

import cv2
import numpy as np
from click.testing import CliRunner

from device.cli import main
from training.synth.dataset import identity_seed
from training.synth.vein import render_impression
from training.synth.vein_frame import render_frame


def test_regions_writes_a_montage_and_names_frames_without_a_finger(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    roi = render_impression(identity_seed(4, 0, "vein"), 0, "roi")
    for posture in ("normal", "side_1", "bent"):
        cv2.imwrite(str(frames / f"{posture}.png"), render_frame(roi, posture, seed=1))
    cv2.imwrite(str(frames / "dark.png"), np.zeros((240, 320), np.uint8))
    out = tmp_path / "m.png"
    res = CliRunner().invoke(main, ["vein", "regions", str(frames), "--out", str(out), "--columns", "2"])
    assert res.exit_code == 1, res.output  # one frame had no region
    assert "finger region found on 3 of 4 frames" in res.output
    assert "dark.png: black frame" in res.output
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[1] == 2 * 320


def test_vein_card_builder_fits_calibrates_and_the_device_loads_it(tmp_path):
    from device.config import InferenceConfig
    from device.inference import build_embedder
    from device.vein.setup import load_vein_check

    out = tmp_path / "vein_lines.json"
    res = CliRunner().invoke(main, ["train", "vein-card", "--out", str(out), "--identities", "6", "--impressions",
                                    "3", "--no-progress"])
    assert res.exit_code == 0, res.output
    raw = json.loads(out.read_text())
    assert [m["name"] for m in raw["matchers"]] == ["vein", "vein-lines"]
    assert raw["calibration"]["levels"]["balanced"]["sets"] == ["synthetic:vein roi seed 11"]
    with build_embedder(InferenceConfig(), modality="vein") as emb:
        check = load_vein_check(out, emb.model_id)
    assert check.threshold("secure") >= check.threshold("balanced") >= check.threshold("convenient")
