"""``biolock data info``: counts, sizes, formats, bit depths and unreadable files, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from device.cli import main
from training.data import load_dataset
from training.data.info import format_text, summarize, to_json


def put(path: Path, image: np.ndarray, ext: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(ext or path.suffix, image)
    assert ok
    path.write_bytes(buf.tobytes())


def mixed_tree(root: Path) -> Path:
    """FVC-style folder: 2 fingers, 3 + 2 impressions; 8-bit, 16-bit, colour, a wrong extension, bad files."""
    root.mkdir(parents=True, exist_ok=True)
    grey = np.full((30, 20), 90, np.uint8)
    put(root / "101_1.png", grey)
    put(root / "101_2.png", grey.astype(np.uint16) * 200)  # 16-bit PNG
    put(root / "101_3.bmp", cv2.cvtColor(np.full((40, 20), 90, np.uint8), cv2.COLOR_GRAY2BGR))  # colour BMP
    put(root / "102_1.tif", grey, ".png")  # a PNG named .tif: decoded by content
    ok, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (30, 20), dtype=np.uint8))
    (root / "102_2.png").write_bytes(png.tobytes()[:200])  # cut short: only decoding notices
    (root / "102_3.png").write_bytes(b"")  # zero bytes: skipped at load time
    (root / "zz.png").write_bytes(b"not even close")  # bad name: skipped at load time
    return root


def test_summary_counts_and_unreadable(tmp_path):
    root = mixed_tree(tmp_path / "db")
    (summary,) = summarize(load_dataset(root), progress=False)
    assert summary.identities == 2 and summary.images == 5
    assert (summary.impressions_min, summary.impressions_max) == (2, 3)
    assert summary.sizes == {"20x30": 3, "20x40": 1}
    assert summary.formats == {"png": 3, "bmp": 1}
    assert summary.depths == {"8-bit grey": 2, "16-bit grey": 1, "8-bit colour": 1}
    assert [(Path(p).name, r) for p, r in summary.unreadable] == [
        ("102_2.png", "truncated PNG (no IEND chunk at the end)")
    ]
    assert sorted((Path(p).name, r.split(" (")[0]) for p, r in summary.skipped) == [
        ("102_3.png", "empty file"),
        ("zz.png", "name does not match the FVC pattern {finger}_{impression}.tif|bmp|png"),
    ]


def test_text_report(tmp_path):
    root = mixed_tree(tmp_path / "db")
    text = format_text(summarize(load_dataset(root), progress=False))
    assert "db [fvc]: 2 identities x 2-3 impressions = 5 images" in text
    assert "unreadable: 1" in text and "102_2.png: truncated PNG" in text
    assert "skipped while loading: 2" in text and "zz.png" in text and "102_3.png: empty file" in text
    assert text.splitlines()[-1] == "total: 1 dataset(s), 5 images, 1 unreadable, 2 skipped"


def test_cli_text_and_json(tmp_path):
    root = mixed_tree(tmp_path / "db")
    runner = CliRunner()
    result = runner.invoke(main, ["data", "info", str(root)])
    assert result.exit_code == 0, result.output
    assert "2 identities" in result.output and "16-bit grey (1)" in result.output
    result = runner.invoke(main, ["data", "info", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (ds,) = data["datasets"]
    assert ds["identities"] == 2 and ds["impressions_per_identity"] == {"min": 2, "max": 3}
    assert ds["unreadable"][0]["reason"] == "truncated PNG (no IEND chunk at the end)"
    assert data["total_images"] == 5


def test_cli_no_check_and_forced_layout(tmp_path):
    root = mixed_tree(tmp_path / "db")
    result = CliRunner().invoke(main, ["data", "info", str(root), "--no-check", "--layout", "fvc"])
    assert result.exit_code == 0, result.output
    assert "not decoded" in result.output and "unreadable" not in result.output


def test_cli_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["data", "info", str(empty)])
    assert result.exit_code == 2
    assert "error:" in result.output and "no image files" in result.output
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(main, ["data", "info", str(tmp_path / "nope")])
    assert missing.exit_code == 2


def test_attributes_are_counted(tmp_path):
    root = tmp_path / "SOCOFing"
    put(root / "Real" / "1__M_Left_index_finger.BMP", np.full((20, 20), 100, np.uint8), ".bmp")
    put(root / "Real" / "2__F_Left_index_finger.BMP", np.full((20, 20), 100, np.uint8), ".bmp")
    (summary,) = summarize(load_dataset(root), progress=False)
    assert summary.attributes["sex"] == {"M": 1, "F": 1}
    assert to_json([summary])["datasets"][0]["attributes"]["hand"] == {"left": 2}


def test_real_data_info(shared_data):
    result = CliRunner().invoke(main, ["data", "info", str(shared_data / "fingerprint" / "fvc2002"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    folders = sorted(p.name for p in (shared_data / "fingerprint" / "fvc2002").iterdir() if p.is_dir())
    assert folders, "fvc2002 holds no DB folders"
    assert sorted(d["name"] for d in data["datasets"]) == [f"fvc2002/{f}" for f in folders]
    assert all(d["identities"] == 10 and not d["unreadable"] for d in data["datasets"])


def test_quality_option_counts_verdicts(tmp_path):
    from training.data.bench import synthetic_fingerprint

    root = tmp_path / "sensor"
    put(root / "1_1.png", synthetic_fingerprint())
    put(root / "1_2.png", np.full((288, 256), 128, np.uint8))  # blank: no finger
    put(root / "2_1.png", np.zeros((288, 256), np.uint8))  # black: too dark
    (summary,) = summarize(load_dataset(root), progress=False, quality="fingerprint")
    assert summary.quality == {"ok": 1, "no finger found": 1, "too dark": 1}
    text = format_text([summary])
    assert "quality (fingerprint): 33.3% pass" in text and "no finger found (1)" in text
    result = CliRunner().invoke(main, ["data", "info", str(root), "--quality", "auto", "--json"])
    assert result.exit_code == 0, result.output
    verdicts = json.loads(result.output)["datasets"][0]["quality"]
    assert verdicts["modality"] == "fingerprint" and verdicts["pass_rate"] == 1 / 3
