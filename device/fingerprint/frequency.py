"""Ridge period: one value per image, from the power spectrum of the foreground.

Why one global value: the enhancement uses a single-frequency Gabor bank (a bank per frequency would multiply its
cost), and within one fingertip the period varies by about +-20 %, which the filter's bandwidth covers. The
estimate is the power-weighted mean frequency in the plausible band of the (2x downsampled) masked image; outside
``PERIOD_RANGE`` the default for the resolution is used.
"""

from __future__ import annotations

import cv2
import numpy as np

from device.fingerprint import params


def ridge_period(img: np.ndarray, mask: np.ndarray) -> float:
    """Period in pixels of ``img`` (float32, zero-mean bandpassed) within boolean ``mask``."""
    if mask.sum() < 1000:
        return params.DEFAULT_PERIOD
    small = cv2.resize(img * mask, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    h, w = small.shape
    spec = cv2.dft(small, flags=cv2.DFT_COMPLEX_OUTPUT)
    power = spec[..., 0] ** 2 + spec[..., 1] ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy) / 2.0  # cycles per full-resolution pixel
    lo, hi = 1.0 / params.PERIOD_RANGE[1], 1.0 / params.PERIOD_RANGE[0]
    band = (f >= lo) & (f <= hi)
    p = power[band]
    if p.sum() <= 0:
        return params.DEFAULT_PERIOD
    p = p ** 2  # sharpen towards the peak
    period = 1.0 / float((f[band] * p).sum() / p.sum())
    if not params.PERIOD_RANGE[0] <= period <= params.PERIOD_RANGE[1]:
        return params.DEFAULT_PERIOD
    return period
