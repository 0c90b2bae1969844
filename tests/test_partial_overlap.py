"""The window-overlap measurement (issue 18, ``training/partial_overlap.py``) runs on a tiny synthetic folder and
its bands account for every registered genuine pair."""

from __future__ import annotations

import json

import cv2


def test_overlap_bands_cover_every_registered_pair(tmp_path, capsys):
    from training.partial_overlap import main
    from training.synth.fingerprint import render_impression

    root = tmp_path / "prints"
    for f in range(3):
        (root / f"{f:03d}").mkdir(parents=True)
        for i in (1, 2, 3):
            cv2.imwrite(str(root / f"{f:03d}" / f"{f:03d}_1_{i}.png"), render_impression(300 + f, i, "capacitive192"))
    assert main([str(root), "--crop", "128x128", "--min-inliers", "12"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["genuine_registered"] + out["genuine_unregistered"] == 9 and out["impostor"] == 3
    assert sum(b["pairs"] for b in out["bands"]) == out["genuine_registered"] > 0
    assert abs(sum(b["share"] for b in out["bands"]) - 1.0) < 1e-9
