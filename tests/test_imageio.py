"""Image I/O: decoding by content, depth/colour conversion, and clear errors that name the file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from device.errors import ImageError
from device.imageio import decode_image, probe_image, read_image, sniff_format, to_grey_u8


def ramp(h: int = 40, w: int = 50) -> np.ndarray:
    return (np.add.outer(np.arange(h) * 3, np.arange(w) * 2) % 256).astype(np.uint8)


def encode(image: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".pgm"])
def test_lossless_8bit_round_trip(tmp_path, ext):
    image = ramp()
    path = tmp_path / f"img{ext}"
    path.write_bytes(encode(image, ext))
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out, image)


def test_jpeg_decodes_close_to_original(tmp_path):
    image = np.full((32, 48), 120, np.uint8)
    image[8:24, 10:30] = 60
    path = tmp_path / "a.jpg"
    path.write_bytes(encode(image, ".jpg"))
    out = read_image(path)
    assert out.shape == image.shape
    assert np.abs(out.astype(int) - image).mean() < 4


def test_wrong_extension_is_decoded_by_content(tmp_path):
    image = ramp()
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(encode(image, ".png"))
    np.testing.assert_array_equal(read_image(path), image)
    assert probe_image(path).format == "png"


def test_16bit_full_range_scales_to_8bit(tmp_path):
    image16 = (ramp().astype(np.uint16) * 257)  # 0..65535 scale
    path = tmp_path / "deep.png"
    path.write_bytes(encode(image16, ".png"))
    out = read_image(path)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - ramp().astype(int)).max() <= 1
    info = probe_image(path)
    assert info.bit_depth == 16 and info.channels == 1


def test_12bit_data_in_16bit_container_is_not_black():
    image = (np.arange(4096, dtype=np.uint16).reshape(64, 64))  # 0..4095: 12-bit sensor data
    out = to_grey_u8(image)
    assert out.max() == 255 and out.min() == 0
    assert out[32, 0] == pytest.approx(2048 * 255 / 4095, abs=1)


def test_colour_and_alpha_become_grey(tmp_path):
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[..., 2] = 200  # red
    bgr[..., 1] = 50
    expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    path = tmp_path / "colour.png"
    path.write_bytes(encode(bgr, ".png"))
    np.testing.assert_array_equal(read_image(path), expected)
    assert probe_image(path).channels == 3
    bgra = np.dstack([bgr, np.full((20, 30), 255, np.uint8)])
    np.testing.assert_array_equal(to_grey_u8(bgra), expected)


def test_zero_byte_file_names_the_path(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.png.*empty file"):
        read_image(path)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_truncated_file_is_an_error_not_half_an_image(tmp_path, ext):
    rng = np.random.default_rng(1)
    data = encode(rng.integers(0, 256, (64, 64), dtype=np.uint8), ext)
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"cut\\{ext}.*truncated"):
        read_image(path)


def test_corrupt_middle_of_png_is_an_error(tmp_path):
    data = bytearray(encode(ramp(64, 64), ".png"))
    data[60:200] = b"\x00" * 140  # clobber the compressed stream, keep IEND
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="bad.png"):
        read_image(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text")
    with pytest.raises(ImageError, match="notes.png.*not an image"):
        read_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="nope.png.*not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)


def test_decode_image_from_bytes_and_sniff():
    data = encode(ramp(), ".bmp")
    assert sniff_format(data) == "bmp"
    assert sniff_format(b"GIF89a....") is None
    np.testing.assert_array_equal(decode_image(data), ramp())
    with pytest.raises(ImageError, match="<bytes>"):
        decode_image(b"")


def test_to_grey_u8_conversions():
    assert to_grey_u8(np.array([[0.0, 1.0]])).tolist() == [[0, 255]]
    assert to_grey_u8(np.array([[-1.0, 1.0]])).tolist() == [[0, 255]]  # out-of-range floats: stretched
    assert to_grey_u8(np.array([[np.nan, 0.5]])).dtype == np.uint8
    assert to_grey_u8(np.array([[True, False]])).tolist() == [[255, 0]]
    assert to_grey_u8(np.array([[-5, 250]], dtype=np.int32)).tolist() == [[0, 255]]
    assert to_grey_u8(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5)
    with pytest.raises(ImageError, match="shape"):
        to_grey_u8(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ImageError, match="shape"):
        to_grey_u8(np.zeros(7, np.uint8))
    with pytest.raises(ImageError, match="numpy array"):
        to_grey_u8([[1, 2]])  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="dtype"):
        to_grey_u8(np.array([["a", "b"]]))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64, np.bool_]),
        shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    )
)
def test_to_grey_u8_always_gives_uint8_of_same_shape(array):
    out = to_grey_u8(array)
    assert out.dtype == np.uint8 and out.shape == array.shape
