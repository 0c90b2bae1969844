"""Dataset loaders: every layout from a tiny fixture tree, auto-detection, bad files skipped with reasons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.errors import DatasetError
from training.data import load_dataset
from training.data.layouts import detect


def write_image(path: Path, value: int = 100, shape=(12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower() if path.suffix.lower() in (".png", ".bmp", ".tif", ".jpg") else ".png"
    ok, buf = cv2.imencode(ext, np.full(shape, value, np.uint8))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


# --- manifest -------------------------------------------------------------------------------------------------------


def make_manifest(root: Path, extra: str = "") -> Path:
    write_image(root / "fp/set1/DB1/101_1.png")
    write_image(root / "fp/set1/DB1/101_2.png")
    write_image(root / "fp/set1/DB1/102_1.png")
    write_image(root / "vein/roi/3/3_1_1.jpg")
    lines = [
        "dataset,relpath,identity,impression,sensor",
        "fp/set1,DB1/101_1.png,DB1/101,1,optical",
        "fp/set1,DB1/101_2.png,DB1/101,2,optical",
        "fp/set1,DB1/102_1.png,DB1/102,1,",
        "vein/roi,3/3_1_1.jpg,3_1,1,nir",
        "vein/roi,3/missing.jpg,3_1,2,nir",
        "fp/set1,DB1/101_1.png,DB1/101,1,optical",
        ",DB1/x.png,DB1/9,1,",
    ]
    (root / "manifest.csv").write_text("\n".join(lines) + "\n" + extra)
    return root / "manifest.csv"


def test_manifest_loads_with_attributes_and_skips_bad_rows(tmp_path):
    make_manifest(tmp_path)
    index = load_dataset(tmp_path)
    assert index.layout == "manifest"
    assert len(index) == 4
    first = index.samples[0]
    assert first.dataset == "fp/set1" and first.identity == "DB1/101" and first.impression == "1"
    assert first.path == tmp_path / "fp/set1/DB1/101_1.png"
    assert first.attributes == {"sensor": "optical"}
    assert index.samples[2].attributes == {}  # empty extra value: no attribute
    reasons = [r for _, r in index.skipped]
    assert any("line 6: file not found" in r for r in reasons)
    assert any("duplicate" in r for r in reasons)
    assert any("empty dataset" in r for r in reasons)
    assert any(p == tmp_path / "vein/roi/3/missing.jpg" for p, _ in index.skipped)


def test_manifest_file_path_works_too(tmp_path):
    manifest = make_manifest(tmp_path)
    assert len(load_dataset(manifest)) == 4


def test_manifest_grouping(tmp_path):
    make_manifest(tmp_path)
    index = load_dataset(tmp_path)
    parts = index.datasets()
    assert sorted(parts) == ["fp/set1", "vein/roi"]
    fp = parts["fp/set1"]
    grouped = {k: [s.impression for s in v] for k, v in fp.identities().items()}
    assert grouped == {"DB1/101": ["1", "2"], "DB1/102": ["1"]}
    # several datasets in one index: identity keys carry the dataset so equal names never merge
    assert "vein/roi/3_1" in index.identities()
    assert sorted(index.subsets()) == ["fp/set1/DB1", "vein/roi"]
    assert any("missing.jpg" in str(p) for p, _ in parts["vein/roi"].skipped)
    labels, impressions = fp.labels()
    assert labels == ["DB1/101", "DB1/101", "DB1/102"] and impressions == ["1", "2", "1"]


def test_manifest_missing_columns_is_a_dataset_error(tmp_path):
    (tmp_path / "manifest.csv").write_text("dataset,path,identity\nx,y,z\n")
    with pytest.raises(DatasetError, match="missing column.*relpath"):
        load_dataset(tmp_path)


def test_manifest_with_only_bad_rows_names_the_problem(tmp_path):
    (tmp_path / "manifest.csv").write_text("dataset,relpath,identity,impression\nd,nothing.png,a,1\n")
    with pytest.raises(DatasetError, match="no images found.*file not found"):
        load_dataset(tmp_path)


# --- FVC ------------------------------------------------------------------------------------------------------------


def test_fvc_layout_with_sensor_subfolders(tmp_path):
    root = tmp_path / "fvc2002"
    for db in ("DB1_B", "DB2_B"):
        for finger in (101, 102):
            for imp in (1, 2, 3):
                write_image(root / db / f"{finger}_{imp}.tif")
    write_image(root / "DB1_B" / "odd-name.png")
    (root / "DB1_B" / "readme.txt").write_text("index of files")
    (root / "DB1_B" / "data.dat").write_bytes(b"\x00")
    index = load_dataset(root)
    assert index.layout == "fvc"
    assert len(index) == 12
    parts = index.datasets()
    assert sorted(parts) == ["fvc2002/DB1_B", "fvc2002/DB2_B"]
    ids = parts["fvc2002/DB1_B"].identities()
    assert sorted(ids) == ["101", "102"] and [s.impression for s in ids["101"]] == ["1", "2", "3"]
    reasons = dict((p.name, r) for p, r in index.skipped)
    assert "FVC pattern" in reasons["odd-name.png"]
    assert "not an image file" in reasons["data.dat"]
    assert "readme.txt" not in reasons  # documentation is not noise


def test_fvc_impressions_sort_naturally(tmp_path):
    for imp in (1, 2, 10):
        write_image(tmp_path / "db" / f"7_{imp}.png")
    index = load_dataset(tmp_path / "db")
    assert [s.impression for s in index.identities()["7"]] == ["1", "2", "10"]


# --- SOCOFing -------------------------------------------------------------------------------------------------------


def test_socofing_layout(tmp_path):
    root = tmp_path / "SOCOFing"
    write_image(root / "Real" / "1__M_Left_index_finger.BMP")
    write_image(root / "Real" / "2__F_Right_thumb_finger.BMP")
    write_image(root / "Altered" / "Altered-Easy" / "1__M_Left_index_finger_CR.BMP")
    write_image(root / "Altered" / "Altered-Hard" / "1__M_Left_index_finger_Zcut.BMP")
    write_image(root / "Altered" / "Altered-Medium" / "2__F_Right_thumb_finger_Obl.BMP")
    write_image(root / "Real" / "not_socofing.BMP")
    index = load_dataset(root)
    assert index.layout == "socofing"
    ids = index.identities()
    assert sorted(ids) == ["1_left_index", "2_right_thumb"]
    assert sorted(s.impression for s in ids["1_left_index"]) == ["easy-CR", "hard-Zcut", "real"]
    real = next(s for s in ids["1_left_index"] if s.impression == "real")
    assert real.attributes == {
        "subject": "1", "sex": "M", "hand": "left", "finger": "index", "alteration": "none", "level": "real"
    }
    obl = ids["2_right_thumb"][0] if ids["2_right_thumb"][0].impression != "real" else ids["2_right_thumb"][1]
    assert obl.attributes["alteration"] == "Obl" and obl.attributes["level"] == "medium"
    assert [p.name for p, _ in index.skipped] == ["not_socofing.BMP"]


# --- SDUMLA-HMT -----------------------------------------------------------------------------------------------------


def test_sdumla_layout(tmp_path):
    root = tmp_path / "FingerVein"
    for subject in ("001", "002"):
        for hand in ("left", "right"):
            for finger in ("index", "middle", "ring"):
                for k in (1, 2):
                    write_image(root / subject / hand / f"{finger}_{k}.bmp")
    write_image(root / "001" / "left" / "thumb_1.bmp")
    index = load_dataset(root)
    assert index.layout == "sdumla"
    assert len(index) == 24 and len(index.identities()) == 12
    sample = index.identities()["002_right_ring"][1]
    assert sample.impression == "2" and sample.attributes == {"subject": "002", "hand": "right", "finger": "ring"}
    assert [p.name for p, _ in index.skipped] == ["thumb_1.bmp"]


# --- folder per identity --------------------------------------------------------------------------------------------


def test_folder_per_identity(tmp_path):
    root = tmp_path / "mine"
    write_image(root / "alice" / "a.png")
    write_image(root / "alice" / "b.jpg")
    write_image(root / "bob" / "1.bmp")
    write_image(root / "loose.png")
    (root / ".hidden").mkdir()
    write_image(root / ".hidden" / "x.png")
    index = load_dataset(root)
    assert index.layout == "folder"
    assert {k: sorted(s.impression for s in v) for k, v in index.identities().items()} == {
        "alice": ["a", "b"],
        "bob": ["1"],
    }
    assert [p.name for p, _ in index.skipped] == ["loose.png"]


def test_forcing_a_layout(tmp_path):
    root = tmp_path / "fvc-like"
    write_image(root / "a" / "1_1.png")
    write_image(root / "a" / "1_2.png")
    assert load_dataset(root).layout == "fvc"
    forced = load_dataset(root, layout="folder")
    assert forced.layout == "folder" and list(forced.identities()) == ["a"]
    with pytest.raises(DatasetError, match="unknown layout"):
        load_dataset(root, layout="zip")


# --- laziness and errors --------------------------------------------------------------------------------------------


def test_loading_does_not_decode_images_but_skips_empty_files(tmp_path):
    root = tmp_path / "db"
    root.mkdir()
    (root / "1_1.png").write_bytes(b"garbage")  # only ``info`` (which decodes) notices this one
    (root / "1_2.png").write_bytes(b"also not a png")
    (root / "1_3.png").write_bytes(b"")  # zero bytes: seen from the file size alone
    index = load_dataset(root)
    assert [s.impression for s in index.samples] == ["1", "2"]
    assert [(p.name, r) for p, r in index.skipped] == [("1_3.png", "empty file (0 bytes)")]


def test_manifest_row_to_an_empty_file_is_skipped(tmp_path):
    write_image(tmp_path / "d" / "a.png")
    (tmp_path / "d" / "b.png").write_bytes(b"")
    (tmp_path / "manifest.csv").write_text("dataset,relpath,identity,impression\nd,a.png,x,1\nd,b.png,x,2\n")
    index = load_dataset(tmp_path)
    assert len(index) == 1
    assert index.skipped == [(tmp_path / "d" / "b.png", f"{tmp_path / 'manifest.csv'} line 3: empty file (0 bytes)")]


def test_path_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no image files"):
        load_dataset(tmp_path)
    write_image(tmp_path / "x" / "a.png")
    with pytest.raises(DatasetError, match="expected a dataset folder"):
        load_dataset(tmp_path / "x" / "a.png")
    flat = tmp_path / "flat"
    write_image(flat / "scan.png")
    with pytest.raises(DatasetError, match="cannot tell the layout"):
        detect(flat)


def test_real_manifest(shared_data):
    index = load_dataset(shared_data)
    assert index.layout == "manifest" and not index.skipped
    subsets = index.subsets()
    assert "fingerprint/fvc2000/DB1_B" in subsets
    db1 = subsets["fingerprint/fvc2000/DB1_B"].identities()
    assert len(db1) == 10 and all(len(v) == 8 for v in db1.values())


def test_training_data_does_not_import_tensorflow():
    code = (
        "import sys, training.data, training.data.info, training.data.layouts;"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
