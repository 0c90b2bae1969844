"""The small-sensor enrolment simulation (issue 18, ``training/partial_enrol_sim.py``) runs end to end on a tiny
synthetic folder laid out like polyu_hrf_500dpi and reports counts that follow from its protocol."""

from __future__ import annotations

import json

import cv2


def test_simulation_reports_the_protocols_pair_counts(tmp_path, capsys):
    from training.partial_enrol_sim import main
    from training.synth.fingerprint import render_impression

    root = tmp_path / "prints"
    for f in range(4):
        (root / f"{f:03d}").mkdir(parents=True)
        for s in (1, 2):
            for i in (1, 2):
                img = render_impression(200 + f, 2 * s + i, "capacitive192")
                cv2.imwrite(str(root / f"{f:03d}" / f"{f:03d}_{s}_{i}.png"), img)
    assert main([str(root), "--crop", "128x128", "--placements", "3", "--budget", "4096", "--impostors", "0",
                 "--cache", str(tmp_path / "cache")]) == 0
    out = json.loads(capsys.readouterr().out)
    probes = out["genuine"] + out["probe_fta"]
    assert out["fingers"] == 4 and out["enrolled"] == 4 and probes == 8
    assert out["impostor"] == 3 * out["genuine"]  # every probe against every other finger
    assert out["template_bytes_max"] <= 4096 and 1 <= out["placements_mean"] <= 3
    assert 0.0 <= out["eer_fvc"] <= 1.0 and 0.0 <= out["fnmr_1e-3"] <= 1.0
