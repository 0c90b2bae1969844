"""Log-Gabor filter bank (4 scales x 6 orientations, 0-150 degrees) built in the frequency domain.

A Log-Gabor filter has a Gaussian radial profile on a log-frequency axis (no DC response, long high-frequency
tail, Field 1987) times a Gaussian angular profile:

    G(f, theta) = exp(-(ln(f / f0))^2 / (2 ln(sigma_on_f)^2)) * exp(-d(theta, theta0)^2 / (2 sigma_theta^2))

with ``sigma_on_f`` = ``radial_bandwidth`` (0.55 is about two octaves) and ``sigma_theta`` = orientation spacing /
``angular_bandwidth``. The angular term is one-sided, so each filter is analytic and its response is complex:
magnitude = local energy, phase = local symmetry (ridge centre vs ridge edge).

"Adaptive" mode measures the image's dominant ridge/vessel frequency (``spectrum.dominant_frequency``) and centres
the four scales geometrically around it (f_k = f_dom * scale_factor^(k - 1.5)); otherwise ``centre_frequency``
takes that place. Features per block of a ``grid``: log mean magnitude, std of magnitude relative to the mean,
and the magnitude-weighted phase coherence |sum(r)| / sum(|r|), for every filter: 4 x 6 x blocks x 3 values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from device.features.spectrum import block_means, dominant_frequency, radial_frequency_grid
from device.features.validation import validate_image


@dataclass(frozen=True)
class LogGaborParams:
    """Everything that shapes the bank; defaults are the ones the fusion report uses."""

    size: tuple[int, int] | None = (96, 96)  # working size (H, W); None keeps the input size
    scales: int = 4
    orientations: int = 6  # 0, 30, ..., 150 degrees
    centre_frequency: float = 0.1  # cycles/pixel at the bank's geometric centre when adaptive is off
    scale_factor: float = 1.6  # ratio of successive centre frequencies
    radial_bandwidth: float = 0.55  # sigma_on_f
    angular_bandwidth: float = 1.3  # orientation spacing / sigma_theta
    adaptive: bool = True
    band: tuple[float, float] = (0.03, 0.35)  # where the dominant frequency is searched (cycles/pixel)
    grid: tuple[int, int] = (4, 4)


def centre_frequencies(params: LogGaborParams, dominant: float | None) -> tuple[float, ...]:
    """Centre frequency of each scale, clipped below Nyquist."""
    centre = dominant if (params.adaptive and dominant is not None) else params.centre_frequency
    offset = (params.scales - 1) / 2.0
    return tuple(float(min(centre * params.scale_factor ** (k - offset), 0.45)) for k in range(params.scales))


@lru_cache(maxsize=128)
def _bank(shape: tuple[int, int], freqs: tuple[float, ...], orientations: int, sigma_on_f: float,
          angular_bw: float) -> np.ndarray:
    radius, angle = radial_frequency_grid(shape)
    radius = radius.copy()
    radius[0, 0] = 1.0  # avoid log(0); DC is zeroed below
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)  # keep the corners (beyond Nyquist circle) out
    sigma_theta = (np.pi / orientations) / angular_bw
    filters = np.empty((len(freqs), orientations) + shape, dtype=np.float32)
    for s, f0 in enumerate(freqs):
        radial = np.exp(-(np.log(radius / f0) ** 2) / (2.0 * np.log(sigma_on_f) ** 2)) * lowpass
        radial[0, 0] = 0.0
        for o in range(orientations):
            theta0 = o * np.pi / orientations
            dtheta = np.arctan2(np.sin(angle - theta0), np.cos(angle - theta0))
            filters[s, o] = radial * np.exp(-(dtheta**2) / (2.0 * sigma_theta**2))
    filters.setflags(write=False)
    return filters


def loggabor_bank(shape: tuple[int, int], params: LogGaborParams = LogGaborParams(),
                  dominant: float | None = None) -> np.ndarray:
    """The frequency-domain bank, shape (scales, orientations, H, W), unshifted FFT layout."""
    freqs = centre_frequencies(params, dominant)
    return _bank(tuple(shape), freqs, params.orientations, params.radial_bandwidth, params.angular_bandwidth)


def _prepare(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    arr = validate_image(image)
    if size is not None and arr.shape != tuple(size):
        arr = cv2.resize(arr, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    std = float(arr.std())
    return ((arr - arr.mean()) / max(std, 1e-6)).astype(np.float32)


def _response_parts(image: np.ndarray, params: LogGaborParams) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts (scales, orientations, H, W), float32, of the validated, standardized image."""
    arr = _prepare(image, params.size)
    dominant = dominant_frequency(arr, params.band) if params.adaptive else None
    if dominant is not None:  # quantize to 1/8 octave (filters are ~2 octaves wide) so the bank cache is reused
        dominant = float(2.0 ** (round(np.log2(dominant) * 8) / 8))
    bank = loggabor_bank(arr.shape, params, dominant)
    spectrum = cv2.dft(arr, flags=cv2.DFT_COMPLEX_OUTPUT)  # (H, W, 2) float32: OpenCV's FFT is ~10x numpy's here
    re = np.empty(bank.shape, dtype=np.float32)
    im = np.empty(bank.shape, dtype=np.float32)
    for s in range(bank.shape[0]):
        for o in range(bank.shape[1]):
            resp = cv2.idft(spectrum * bank[s, o][:, :, None], flags=cv2.DFT_COMPLEX_OUTPUT | cv2.DFT_SCALE)
            re[s, o], im[s, o] = resp[:, :, 0], resp[:, :, 1]
    return re, im


def loggabor_responses(image: np.ndarray, params: LogGaborParams = LogGaborParams()) -> np.ndarray:
    """Complex responses (scales, orientations, H, W) of a validated, standardized image."""
    re, im = _response_parts(image, params)
    return re + 1j * im


def extract_loggabor(image: np.ndarray, params: LogGaborParams = LogGaborParams()) -> np.ndarray:
    """Feature vector (float32, length scales*orientations*blocks*3) of one finger image; never NaN.

    Raises ``FeatureRejection`` for blank, tiny, saturated or non-finger images.
    """
    re, im = _response_parts(image, params)
    power = re * re + im * im
    mag = np.sqrt(power)
    mean, sq = block_means(mag, params.grid), block_means(power, params.grid)
    bre, bim = block_means(re, params.grid), block_means(im, params.grid)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    coherence = np.sqrt(bre * bre + bim * bim) / np.maximum(mean, 1e-9)
    feats = np.stack([np.log1p(mean), std / np.maximum(mean, 1e-9), coherence], axis=-1)
    out = feats.astype(np.float32).ravel()
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
