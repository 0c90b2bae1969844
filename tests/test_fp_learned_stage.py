"""The learned fingerprint segmentation (issue 15, "Learned stage"): the shipped int8 model on the real LiteRT
interpreter, its agreement with the float model, the switch in the extractor and its backend, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from device.errors import ConfigError, ModelError
from device.fingerprint import params
from device.fingerprint.errors import FingerprintError
from device.fingerprint.extract import extract_minutiae, extract_with_quality
from device.fingerprint.learned_segment import (
    DEFAULT_CARD,
    N_FEATURES,
    LearnedSegmenter,
    block_features,
    segmenter,
)
from training.fp_segmentation import features_and_blocks, render_with_truth, run_tflite
from training.synth.profiles import get_profile

FVC = Path(__file__).resolve().parents[2] / "shared" / "data" / "fingerprint" / "fvc2000" / "DB1_B"


@pytest.fixture(scope="module")
def prints() -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic impressions (never seen in training: other identity seeds) with their foreground truth."""
    return [render_with_truth(900_000 + i, i % 3, get_profile(p, "fingerprint"))
            for i, p in enumerate(["optical500", "r307", "optical500", "capacitive192"])]


def test_truth_renderer_gives_the_generators_own_image():
    from training.synth.fingerprint import render_impression

    grey, truth = render_with_truth(12345, 2, get_profile("r307", "fingerprint"))
    assert np.array_equal(grey, render_impression(12345, 2, "r307"))
    assert truth.shape == grey.shape and 0.0 <= truth.min() and truth.max() <= 1.0 and truth.mean() > 0.1


def test_shipped_model_loads_on_litert_and_gives_a_block_mask(prints):
    seg = LearnedSegmenter(DEFAULT_CARD)
    assert seg.input[0] == "int8" and seg.output[0] == "int8"
    assert DEFAULT_CARD.parent.joinpath(seg.card["file"]).stat().st_size < 200_000
    for grey, _ in prints:
        feats, classic, _ = features_and_blocks(grey)
        p = seg.probabilities(feats)
        mask = seg.block_mask(feats)
        rows, cols = -(-grey.shape[0] // params.BLOCK), -(-grey.shape[1] // params.BLOCK)
        assert p.shape == mask.shape == classic.shape == (rows, cols)
        assert p.dtype == np.float32 and 0.0 <= p.min() and p.max() <= 1.0
        assert mask.dtype == bool and 0 < mask.sum() < mask.size


def test_learned_mask_finds_the_synthetic_finger(prints):
    seg = segmenter(DEFAULT_CARD)
    errors = []
    for grey, truth in prints:
        feats, _, share = features_and_blocks(grey, truth)
        errors.append(np.mean(seg.block_mask(feats) != (share > 0.5)))
    assert np.mean(errors) < 0.05


def test_int8_model_agrees_with_the_float_model(prints):
    card = json.loads(DEFAULT_CARD.read_text())
    flt = (DEFAULT_CARD.parent / card["float_file"]).read_bytes()
    q = (DEFAULT_CARD.parent / card["file"]).read_bytes()
    same, diffs = [], []
    for grey, _ in prints:
        feats = features_and_blocks(grey)[0]
        a, b = run_tflite(flt, feats), run_tflite(q, feats)
        same.append(np.mean((a > card["threshold"]) == (b > card["threshold"])))
        diffs.append(np.mean(np.abs(a - b)))
    assert np.mean(same) >= 0.98 and np.mean(diffs) < 0.02
    assert card["metrics"]["int8_float_block_agreement"] >= 0.98


def test_extractor_switch_and_backend(prints):
    from device.minutiae.base import BACKENDS, available, open_matcher

    grey = prints[0][0]
    classic = extract_minutiae(grey, 500)
    learned, quality = extract_with_quality(grey, 500, segmenter="learned")
    assert len(learned.xy) >= params.MIN_MINUTIAE and quality.score >= 0
    assert params.SEGMENTER == "classic"
    assert np.array_equal(extract_minutiae(grey, 500, segmenter="classic").xy, classic.xy)
    assert "biolock-learnedseg" in BACKENDS and available("biolock-learnedseg") is None
    m = open_matcher("biolock-learnedseg")
    assert m.template_id != open_matcher("biolock").template_id
    t = m.extract(grey)
    assert m.compare(t, t) > 0.5


def test_bad_input_gives_typed_errors(prints):
    seg = segmenter(DEFAULT_CARD)
    grey = prints[0][0]
    with pytest.raises(ConfigError):
        extract_minutiae(grey, 500, segmenter="magic")
    with pytest.raises(FingerprintError) as blank:
        extract_minutiae(np.full((300, 300), 200, np.uint8), 500, segmenter="learned")
    assert blank.value.reason == "blank"
    feats = features_and_blocks(grey)[0]
    for bad in (feats[..., :3], feats[0], feats[:2, :2], feats.astype(np.float64), np.full_like(feats, np.nan)):
        with pytest.raises(FingerprintError):
            seg.probabilities(bad)
    img = np.zeros((64, 64), np.uint8)
    with pytest.raises(FingerprintError):
        block_features(img, np.zeros((64, 64), np.float32), np.zeros((4, 4), np.float32))  # grid is 8x8
    with pytest.raises(FingerprintError):
        block_features(img[:60], np.zeros((60, 64), np.float32), np.zeros((7, 8), np.float32))  # not whole blocks
    assert feats.shape[-1] == N_FEATURES


def _copy_card(tmp_path: Path, **changes) -> Path:
    card = json.loads(DEFAULT_CARD.read_text())
    shutil.copy(DEFAULT_CARD.parent / card["file"], tmp_path / card["file"])
    card.update(changes)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    return path


def test_bad_cards_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="cannot read"):
        LearnedSegmenter(tmp_path / "missing.json")
    with pytest.raises(ModelError, match="sha256"):
        LearnedSegmenter(_copy_card(tmp_path, sha256="0" * 64))
    with pytest.raises(ModelError, match="features"):
        LearnedSegmenter(_copy_card(tmp_path, features="fp-seg-blockfeat-v0"))
    for bad in (1.5, "0.5", None):
        with pytest.raises(ModelError, match="threshold"):
            LearnedSegmenter(_copy_card(tmp_path, threshold=bad))
    with pytest.raises(ModelError, match="not a"):
        LearnedSegmenter(_copy_card(tmp_path, format="biolock-model-card/1"))
    card = json.loads(DEFAULT_CARD.read_text())
    with pytest.raises(ModelError, match="differs from its card"):
        LearnedSegmenter(_copy_card(tmp_path, input={**card["input"], "scale": card["input"]["scale"] * 2}))
    (tmp_path / card["file"]).write_bytes(b"not a flatbuffer")
    path = _copy_card(tmp_path)
    (tmp_path / card["file"]).write_bytes(b"not a flatbuffer")
    raw = json.loads(path.read_text())
    import hashlib

    raw["sha256"] = hashlib.sha256(b"not a flatbuffer").hexdigest()
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="LiteRT cannot load"):
        LearnedSegmenter(path)


@pytest.mark.skipif(not FVC.is_dir(), reason="../shared/data (FVC2000 DB1_B) is not here")
def test_real_print_gets_a_plausible_mask():
    import cv2

    grey = cv2.imread(str(FVC / "101_1.png"), cv2.IMREAD_GRAYSCALE)
    feats, classic, _ = features_and_blocks(grey)
    mask = segmenter(DEFAULT_CARD).block_mask(feats)
    assert 0.3 < mask.mean() < 1.0
    assert np.mean(mask == classic) > 0.8  # both find the same finger; they differ at its border
    assert len(extract_minutiae(grey, 500, segmenter="learned").xy) >= params.MIN_MINUTIAE


def test_export_checks_int8_against_float_and_writes_a_loadable_card(tmp_path):
    pytest.importorskip("tensorflow")
    import click

    from training.fp_segmentation import export, make_samples, train_model

    samples = make_samples(3, 1, seed=3)
    model = train_model(samples, steps=4, seed=3, log=lambda *_: None)
    with pytest.raises(click.ClickException, match="nothing written"):
        export(model, samples, samples, tmp_path, "test", "test", min_agreement=1.01)
    assert not any(tmp_path.iterdir())
    card = export(model, samples, samples, tmp_path, "test", "test", min_agreement=0.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [card["file"], card["float_file"], "fingerprint_segment.json"])
    seg = LearnedSegmenter(tmp_path / "fingerprint_segment.json")
    feats = samples[0][0]
    assert seg.probabilities(feats).shape == feats.shape[:2]


def test_the_device_path_never_imports_tensorflow(prints, tmp_path):
    import subprocess
    import sys

    np.save(tmp_path / "grey.npy", prints[0][0])
    code = ("import sys, numpy as np\n"
            "from device.minutiae.base import open_matcher\n"
            f"t = open_matcher('biolock-learnedseg').extract(np.load({str(tmp_path / 'grey.npy')!r}))\n"
            "assert len(t) > 0 and 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
