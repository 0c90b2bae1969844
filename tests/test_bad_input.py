"""Issue 17 item 7: hostile or broken input gives a typed one-line error, fast, and never a hang or gigabytes.

Each test reproduces an attack from the issue: ``--image /dev/zero`` read 5.9 GB, a FIFO blocked forever, a
781 KB 20000x20000 16-bit PNG peaked at 7.4 GB, a crafted backup's KDF parameters forced 2-4 GB before the
passphrase check, non-UTF-8 names and config files gave tracebacks with exit 1 ("rejected"), a flipped byte in
``store.db`` gave an untyped error, libpng printed extra lines, a symlink loop was "does not exist".
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from device.cli import main
from device.errors import ImageError, KeyError_, StoreError
from device.imageheader import dimensions
from device.imageio import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, read_image, sniff_format
from device.store import TemplateStore
from device.store import keys as keys_mod


def run(*args: str, state: Path | None = None):
    extra = ["--state-dir", str(state)] if state else []
    return CliRunner().invoke(main, [*extra, *args])


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    return result.output


def test_dev_zero_is_refused_without_reading_it():
    with pytest.raises(ImageError, match="not a regular file"):
        read_image("/dev/zero")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "probe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(fifo)  # before the fix: blocked forever in open()


def test_an_oversized_file_is_refused_by_size(tmp_path: Path):
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(MAX_IMAGE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ImageError, match="too large"):
        read_image(big)


def test_a_symlink_loop_is_reported_as_a_loop(tmp_path: Path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    out = one_line_error(run("verify", "alice", "--image", str(loop), state=tmp_path / "s"))
    assert "symbolic link loop" in out


def png_claiming(width: int, height: int, depth: int = 16) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (the 781 KB attack file, in a few hundred bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))


def test_a_huge_pixel_count_is_refused_from_the_header(tmp_path: Path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(20000, 20000))
    with pytest.raises(ImageError, match="20000x20000 pixels"):
        read_image(path)


def test_a_real_image_over_the_pixel_cap_is_refused(tmp_path: Path):
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1
    ok, buf = cv2.imencode(".png", np.zeros((side, side), np.uint8))
    path = tmp_path / "large.png"
    path.write_bytes(buf.tobytes())
    with pytest.raises(ImageError, match="pixels"):
        read_image(path)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".pgm", ".ppm", ".webp"])
@pytest.mark.parametrize("colour", [False, True])
def test_header_dimensions_match_the_encoder(ext: str, colour: bool):
    image = np.zeros((37, 53, 3) if colour else (37, 53), np.uint8)
    if ext == ".ppm" and not colour:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if ext == ".pgm" and colour:
        image = image[:, :, 0]
    ok, buf = cv2.imencode(ext, image)
    data = buf.tobytes()
    assert dimensions(data, sniff_format(data)) == (53, 37)


def test_libpng_output_is_silenced_and_quoted_in_the_one_line_error(tmp_path: Path, capfd):
    ok, buf = cv2.imencode(".png", np.zeros((50, 50), np.uint8))
    data = bytearray(buf.tobytes())
    data[data.index(b"IDAT") + 6] ^= 0xFF
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert "\n" not in str(err.value) and "IDAT" in str(err.value)
    assert capfd.readouterr().err == ""  # before: "libpng error: IDAT: ..." went straight to the terminal


@pytest.fixture
def fast_kdf(monkeypatch):
    monkeypatch.setattr(keys_mod, "ARGON2_PARAMS", {"name": "argon2id", "memory_kib": 1024, "iterations": 1,
                                                    "lanes": 1})
    monkeypatch.setattr(keys_mod, "SCRYPT_PARAMS", {"name": "scrypt", "n": 2**10, "r": 8, "p": 1})


@pytest.mark.parametrize("kdf", [
    {"name": "argon2id", "memory_kib": 1 << 21, "iterations": 1, "lanes": 1},  # 2 GiB
    {"name": "argon2id", "memory_kib": 1024, "iterations": 64, "lanes": 1},
    {"name": "argon2id", "memory_kib": 1024, "iterations": 1},  # missing lanes: was a KeyError traceback
    {"name": "scrypt", "n": 1 << 20, "r": 8, "p": 1},
    {"name": "scrypt", "n": 1000, "r": 8, "p": 1},  # not a power of two: was a ValueError traceback
    {"name": "argon2id", "memory_kib": 1024, "iterations": 1, "lanes": 1, "secret": 1},
])
def test_backup_kdf_parameters_beyond_what_biolock_writes_are_refused_before_deriving(fast_kdf, tmp_path, kdf):
    with TemplateStore.open(tmp_path / "s") as store:
        store.enroll("alice", "right-index", "fingerprint", "m@1", [np.ones(8, np.float32)])
        store.export_backup(tmp_path / "b.backup", "long enough passphrase")
    magic, header, body = (tmp_path / "b.backup").read_bytes().split(b"\n", 2)
    meta = json.loads(header)
    meta["kdf"] = kdf
    (tmp_path / "evil.backup").write_bytes(magic + b"\n" + json.dumps(meta).encode() + b"\n" + body)
    with TemplateStore.open(tmp_path / "t") as target, pytest.raises(StoreError, match="key derivation"):
        target.import_backup(tmp_path / "evil.backup", "long enough passphrase")


def test_key_file_kdf_parameters_are_bounded_too(fast_kdf):
    wrapped = json.loads(keys_mod.wrap_key(os.urandom(32), "passphrase"))
    wrapped["kdf"]["memory_kib"] = 1 << 21
    with pytest.raises(KeyError_, match="memory_kib"):
        keys_mod.unwrap_key(json.dumps(wrapped).encode(), "passphrase")


def test_non_utf8_user_names_are_errors_not_rejections(tmp_path: Path):
    state = tmp_path / "s"
    with TemplateStore.open(state) as store:
        store.enroll("alice", "right-index", "fingerprint", "m@1", [np.ones(8, np.float32)])
    bad = "al\udcffce"  # what Python makes of the bytes b"al\xffce" on a Linux command line
    assert "not valid UTF-8" in one_line_error(run("users", "rename", "alice", bad, state=state))
    assert "UTF-8" in one_line_error(run("users", "delete", bad, "--yes", state=state))
    with TemplateStore.open(state) as store, pytest.raises(StoreError, match="invalid user name"):
        store.enroll(bad, "right-index", "fingerprint", "m@1", [np.ones(8, np.float32)])
    from device.pipeline import RequestError, check_user_name

    with pytest.raises(RequestError, match="UTF-8") as err:  # verify/identify/enroll: exit 2, never 1
        check_user_name(bad)
    assert err.value.exit_code == 2


def test_non_utf8_config_exits_2_not_1(tmp_path: Path):
    cfg = tmp_path / "biolock.toml"
    cfg.write_bytes(b"[lockout]\nseconds = 3\n# \xff\n")
    assert "UTF-8" in one_line_error(run("--config", str(cfg), "status"))


def test_a_flipped_byte_in_a_text_column_is_a_typed_damaged_store_error(tmp_path: Path):
    state = tmp_path / "s"
    with TemplateStore.open(state) as store:
        store.enroll("alice", "right-index", "fingerprint", "m@1", [np.ones(8, np.float32)])
    conn = sqlite3.connect(state / "store.db")
    conn.execute("UPDATE users SET name = CAST(X'616cff' AS TEXT)")  # one byte of "ali" flipped to 0xff
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="damaged"), TemplateStore.open(state) as store:
        store.users({})
    assert "damaged" in one_line_error(run("users", "list", state=state))
