"""biolock's own minutiae extractor (device.fingerprint): stages on images with a known answer, typed errors on bad
captures, the ISO 19794-2 record, and (realdata) extraction on the FVC sets.

The main ground truth is analytic: ridges cos(psi) with psi = 2*pi*y/T + sum(s_i * atan2(y - y_i, x - x_i)) have
exactly one minutia at each (x_i, y_i) (the phase winds once around it, so one ridge more on one side), whose
direction points to the side with the extra ridge: +x for s = +1, -x for s = -1, whichever kind it is.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from device.errors import BiolockError
from device.fingerprint import params
from device.fingerprint.errors import FingerprintError
from device.fingerprint.extract import bandpass, extract_minutiae, extract_with_quality
from device.fingerprint.frequency import ridge_period
from device.fingerprint.iso import to_iso19794_2
from device.fingerprint.minutia import BIFURCATION, ENDING, Minutiae
from device.fingerprint.orientation import orientation_field
from device.fingerprint.quality import ACCEPT
from device.fingerprint.skeleton import crossing_number, thin

GRID = (85, 160, 235)


def phase_print(size: int = 320, period: float = 9.0, noise: float = 10.0, seed: int = 0):
    """A grey print (ridges dark) with nine minutiae at known places and directions."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    scale = size / 320
    truth = [(x * scale, y * scale, 1 if (i + j) % 2 == 0 else -1)
             for i, y in enumerate(GRID) for j, x in enumerate(GRID)]
    psi = 2 * np.pi * ys / period
    for x0, y0, s in truth:
        psi += s * np.arctan2(ys - y0, xs - x0)
    grey = 128 - 80 * np.cos(psi) + rng.normal(0, noise, psi.shape)
    return np.clip(grey, 0, 255).astype(np.uint8), truth


def _match(m: Minutiae, truth, tol: float):
    """For each true minutia, the index of the nearest found one within ``tol`` pixels, or -1."""
    out = []
    for x0, y0, _ in truth:
        d = np.hypot(m.xy[:, 0] - x0, m.xy[:, 1] - y0)
        out.append(int(np.argmin(d)) if len(d) and d.min() <= tol else -1)
    return out


def _angle_error(a: float, b: float) -> float:
    return float(abs(np.angle(np.exp(1j * (a - b)))))


@pytest.mark.parametrize("noise", [5.0, 30.0])
def test_finds_every_known_minutia_with_its_direction_and_nothing_else(noise):
    grey, truth = phase_print(noise=noise)
    m = extract_minutiae(grey)
    found = _match(m, truth, tol=0.7 * 9.0)
    assert all(i >= 0 for i in found), f"missed: {[t for t, i in zip(truth, found, strict=True) if i < 0]}"
    assert len(m) == len(truth), f"{len(m) - len(truth)} spurious minutiae"
    for (_, _, s), i in zip(truth, found, strict=True):
        want = 0.0 if s > 0 else np.pi
        assert _angle_error(float(m.angle[i]), want) < np.radians(20)
    assert set(m.kind.tolist()) <= {ENDING, BIFURCATION}
    assert m.xy.dtype == np.float32 and m.angle.dtype == np.float32
    assert np.all((m.angle >= 0) & (m.angle < 2 * np.pi)) and np.all((m.quality >= 0) & (m.quality <= 1))
    assert m.shape == grey.shape and m.dpi == 500


def test_coordinates_are_in_the_input_pixels_at_another_resolution():
    grey, truth = phase_print(size=640, period=18.0)  # the same print scanned at 1000 dpi
    m = extract_minutiae(grey, dpi=1000)
    assert m.dpi == 1000 and m.shape == (640, 640)
    assert all(i >= 0 for i in _match(m, truth, tol=0.7 * 18.0))


def test_a_resolution_near_500_dpi_is_used_as_it_is():
    """Within RESAMPLE_TOLERANCE the pixels are not resampled (it cost EER on FVC2002 DB2_B, 569 dpi); the minutiae
    still carry the sensor's dpi so a matcher can scale distances."""
    grey, _ = phase_print()
    a, b = extract_minutiae(grey, dpi=500), extract_minutiae(grey, dpi=560)
    assert b.dpi == 560 and np.array_equal(a.xy, b.xy) and np.array_equal(a.angle, b.angle)


@pytest.mark.parametrize("degrees", [0, 30, 60, 90, 135])
def test_orientation_of_a_sinusoid(degrees):
    """Ridges cos(w (x cos a + y sin a)) run at a + 90 degrees (image angles, modulo 180)."""
    a = np.radians(degrees)
    ys, xs = np.mgrid[0:128, 0:128].astype(np.float32)
    img = np.cos(2 * np.pi / 9.0 * (xs * np.cos(a) + ys * np.sin(a))).astype(np.float32)
    field = orientation_field(img)
    centre = field.theta[32:96, 32:96]
    err = np.abs(np.angle(np.exp(2j * (centre - (a + np.pi / 2))))) / 2
    assert float(err.max()) < np.radians(3)
    assert float(field.coherence[32:96, 32:96].min()) > 0.9


@pytest.mark.parametrize("period", [7.0, 9.0, 12.0])
def test_ridge_period_of_a_sinusoid(period):
    ys, xs = np.mgrid[0:256, 0:256].astype(np.float32)
    img = np.cos(2 * np.pi / period * (0.6 * xs + 0.8 * ys)).astype(np.float32)
    assert abs(ridge_period(img, np.ones(img.shape, bool)) - period) < 0.1 * period


def test_thinning_gives_one_pixel_lines_with_the_same_topology():
    img = np.zeros((80, 120), np.uint8)
    cv2.line(img, (10, 20), (110, 30), 1, 6)
    cv2.circle(img, (60, 58), 14, 1, 5)  # a ring: thinning must keep its hole
    skel = thin(img)
    assert skel.sum() > 100
    blocks = skel[:-1, :-1] & skel[1:, :-1] & skel[:-1, 1:] & skel[1:, 1:]
    assert not blocks.any(), "a 2x2 block survived thinning"
    n_in, _ = cv2.connectedComponents(img, connectivity=8)
    n_out, _ = cv2.connectedComponents(skel, connectivity=8)
    assert n_in == n_out == 3
    holes_in = cv2.connectedComponents(1 - img, connectivity=4)[0]
    holes_out = cv2.connectedComponents(1 - skel, connectivity=4)[0]
    assert holes_in == holes_out
    cn = crossing_number(skel)
    assert int((cn == 1).sum()) == 2  # the line's two ends; the ring has none
    assert int((cn >= 3).sum()) == 0


def test_bad_captures_raise_typed_errors():
    rng = np.random.default_rng(1)
    cases = {
        "blank": np.full((300, 300), 200, np.uint8),
        "saturated": (rng.random((300, 300)) > 0.5).astype(np.uint8) * 255,
        "bad_image": np.zeros((300, 300), np.float32),
    }
    for reason, img in cases.items():
        with pytest.raises(FingerprintError) as err:
            extract_minutiae(img)
        assert err.value.reason == reason
        assert isinstance(err.value, BiolockError) and str(err.value)
    with pytest.raises(FingerprintError, match="2-D uint8"):
        extract_minutiae(np.zeros((40, 40), np.uint8))
    noise = rng.integers(0, 256, (300, 300)).astype(np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 1.5)
    for img in (noise, blurred):  # no ridges: never a template
        with pytest.raises(FingerprintError) as err:
            extract_minutiae(img)
        assert err.value.reason in {"no_finger", "too_few_minutiae"}
    grey, _ = phase_print()
    grey[:, 40:] = 200  # a sliver of finger: too little to use
    with pytest.raises(FingerprintError):
        extract_minutiae(grey)
    with pytest.raises(FingerprintError, match="resolution"):
        extract_minutiae(phase_print()[0], dpi=100)


def test_quality_falls_with_noise_and_names_a_reason():
    clean = extract_with_quality(phase_print(noise=5.0)[0])[1]
    noisy_img = phase_print(noise=90.0, seed=3)[0]
    try:
        noisy = extract_with_quality(noisy_img)[1]
    except FingerprintError:
        return  # failing outright is an acceptable answer for this much noise
    assert clean.score > noisy.score
    assert clean.reason is None
    assert (noisy.reason is None) == (noisy.score >= ACCEPT)


def test_iso19794_2_record_layout():
    grey, _ = phase_print()
    m = extract_minutiae(grey)
    rec = to_iso19794_2(m)
    assert rec[:8] == b"FMR\x00 20\x00"
    length, _, width, height, xres, yres, views, _ = struct.unpack(">IHHHHHBB", rec[8:24])
    assert length == len(rec) == 24 + 4 + 6 * len(m) + 2
    assert (width, height, views) == (320, 320, 1) and xres == yres == 197  # 500 dpi in pixels per cm
    assert rec[27] == len(m)
    for k in range(len(m)):
        tx, y, a, q = struct.unpack(">HHBB", rec[28 + 6 * k: 34 + 6 * k])
        assert abs((tx & 0x3FFF) - m.xy[k, 0]) <= 0.5 and abs((y & 0x3FFF) - m.xy[k, 1]) <= 0.5
        assert (tx >> 14) == {ENDING: 1, BIFURCATION: 2}[int(m.kind[k])]
        assert _angle_error(a * 2 * np.pi / 256, float(m.angle[k])) <= np.pi / 256 + 1e-6
        assert q == round(float(m.quality[k]) * 100)
    assert rec[-2:] == b"\x00\x00"


def test_synthetic_impressions_of_one_finger_extract():
    """Prints of the project's own generator: every impression gives a usable template."""
    from training.synth.fingerprint import render_impression

    for imp in range(2):
        m, q = extract_with_quality(render_impression(11, imp, "optical500"))
        assert len(m) >= params.MIN_MINUTIAE and 0.0 < q.score <= 1.0


def test_bandpass_keeps_ridges_bright():
    grey, _ = phase_print(noise=0.0)
    f = bandpass(grey)
    assert abs(float(f.mean())) < 5 and float(np.corrcoef(f.ravel(), 255.0 - grey.ravel())[0, 1]) > 0.9


@pytest.mark.realdata
def test_real_fvc_prints_extract(shared_data):
    """Two fingers of every FVC DB_B set: each capture gives a template with a plausible number of minutiae."""
    counts = []
    sets = [("2000", "DB1_B", 500), ("2000", "DB3_B", 500), ("2002", "DB2_B", 569), ("2002", "DB3_B", 500)]
    for year, db, dpi in sets:
        folder = shared_data / "fingerprint" / f"fvc{year}" / db
        for path in sorted(folder.glob("10[12]_*.png"))[:16]:
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            m = extract_minutiae(grey, dpi=dpi)
            assert m.shape == grey.shape and np.all(m.xy >= 0)
            assert np.all(m.xy[:, 0] < grey.shape[1]) and np.all(m.xy[:, 1] < grey.shape[0])
            counts.append(len(m))
    assert len(counts) == 64 and 15 <= float(np.mean(counts)) <= 120
