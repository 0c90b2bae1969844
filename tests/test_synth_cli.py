"""`biolock data synth` / `data calibrate`: examples in help, outputs, one-line errors that write nothing."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from device.cli import main


def test_synth_writes_a_dataset(tmp_path):
    out = tmp_path / "fp"
    r = CliRunner().invoke(main, ["data", "synth", "--modality", "fingerprint", "--identities", "2", "--impressions",
                                  "2", "--profile", "capacitive96", "--seed", "3", "--out", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == 4 and "manifest" in r.output


def test_vein_default_profile_is_roi(tmp_path):
    out = tmp_path / "v"
    r = CliRunner().invoke(main, ["data", "synth", "--modality", "vein", "--identities", "1", "--impressions", "1",
                                  "--out", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert (out / "synth-vein-roi").is_dir()


def _fails(args, tmp_path, match):
    r = CliRunner().invoke(main, ["data", "synth", *args])
    assert r.exit_code == 2, r.output
    assert match in r.output and "Traceback" not in r.output
    return r


def test_bad_arguments_are_one_line_errors_and_write_nothing(tmp_path):
    out = tmp_path / "o"
    base = ["--modality", "fingerprint", "--out", str(out), "--workers", "1"]
    _fails([*base, "--identities", "0"], tmp_path, "identities")
    _fails([*base, "--identities", "1", "--profile", "roi"], tmp_path, "unknown fingerprint profile")
    assert not out.exists()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _fails(["--modality", "vein", "--identities", "1", "--out", str(blocker / "x")], tmp_path, "not a folder")
    out.mkdir()
    (out / "other.txt").write_text("keep")
    _fails([*base, "--identities", "1"], tmp_path, "--force")
    assert [p.name for p in out.iterdir()] == ["other.txt"]


def test_help_texts_have_examples():
    for cmd in ("synth", "calibrate"):
        r = CliRunner().invoke(main, ["data", cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.output and f"biolock data {cmd}" in r.output


def test_calibrate_without_real_manifest_fails_cleanly(tmp_path):
    r = CliRunner().invoke(main, ["data", "calibrate", "--modality", "vein", "--real", str(tmp_path), "--out",
                                  str(tmp_path / "c")])
    assert r.exit_code == 2 and "manifest" in r.output
