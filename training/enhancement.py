"""Contrast enhancement study: CLAHE, global histogram equalization, contrast stretching and smoothing, compared
with the quality measures the vascular-biometrics literature uses (mean, variance, PSNR, SSIM, edge preservation).

All methods take and return uint8 grey images. Measures compare the enhanced image with the original:

- ``psnr``: 10 log10(255^2 / MSE) in dB (capped at 100 dB for identical images).
- ``ssim``: Wang et al. 2004, Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, mean SSIM map.
- ``edge_preservation_index`` (EPI, Sattar et al. 1997): correlation of the Laplacian high-pass of the original
  and of the enhanced image, sum((dS - mean dS)(dE - mean dE)) / sqrt(sum((dS - mean)^2) sum((dE - mean)^2));
  1 = edges kept exactly, lower = edges lost or moved. Undefined (reported as 0) for a flat image.
- ``contrast_gain``: std(enhanced) / std(original).

PSNR and SSIM reward doing nothing; EPI and contrast gain reward making structure visible. The table alone cannot
pick a winner, so ``training.fusion_report`` also measures each method's effect on matcher EER (the criterion the
default is chosen by); both appear in docs/fusion.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

Enhancement = Callable[[np.ndarray], np.ndarray]


def _u8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"expected a non-empty 2-D grey image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def identity(image: np.ndarray) -> np.ndarray:
    """No enhancement (the baseline row)."""
    return _u8(image).copy()


def clahe(image: np.ndarray, clip_limit: float = 2.0, tiles: tuple[int, int] = (8, 8)) -> np.ndarray:
    """Contrast-limited adaptive histogram equalization (OpenCV), clip 2.0 on an 8x8 tile grid."""
    return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tiles).apply(_u8(image))


def histogram_equalization(image: np.ndarray) -> np.ndarray:
    """Global histogram equalization."""
    return cv2.equalizeHist(_u8(image))


def contrast_stretch(image: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> np.ndarray:
    """Linear stretch of the [low_pct, high_pct] percentile range onto 0..255 (clipping the tails)."""
    arr = _u8(image).astype(np.float32)
    lo, hi = np.percentile(arr, [low_pct, high_pct])
    if hi <= lo:
        return arr.astype(np.uint8)
    return np.clip((arr - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def smoothing(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian smoothing (sigma 1 px): removes sensor noise, softens edges."""
    return cv2.GaussianBlur(_u8(image), (0, 0), sigma)


METHODS: dict[str, Enhancement] = {
    "none": identity,
    "clahe": clahe,
    "histeq": histogram_equalization,
    "stretch": contrast_stretch,
    "smooth": smoothing,
}


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (8-bit peak); 100 dB for identical images."""
    a, b = _u8(reference).astype(np.float64), _u8(image).astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse <= 1e-10 else float(min(100.0, 10.0 * np.log10(255.0**2 / mse)))


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Mean structural similarity (Gaussian window sigma 1.5, K1 0.01, K2 0.03, L 255)."""
    a, b = _u8(reference).astype(np.float64), _u8(image).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def edge_preservation_index(reference: np.ndarray, image: np.ndarray) -> float:
    """EPI: correlation of Laplacian high-passes of original and enhanced image (0 when either is flat)."""
    a = cv2.Laplacian(_u8(reference).astype(np.float64), cv2.CV_64F, ksize=3)
    b = cv2.Laplacian(_u8(image).astype(np.float64), cv2.CV_64F, ksize=3)
    a -= a.mean()
    b -= b.mean()
    den = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return 0.0 if den <= 0 else float(np.sum(a * b) / den)


def contrast_gain(reference: np.ndarray, image: np.ndarray) -> float:
    """std(enhanced) / std(original); 0 for a flat original."""
    s = float(_u8(reference).std())
    return 0.0 if s <= 0 else float(_u8(image).std()) / s


def measure(reference: np.ndarray, enhanced: np.ndarray) -> dict[str, float]:
    """All quality measures of one enhanced image against its original."""
    e = _u8(enhanced)
    return {
        "mean": float(e.mean()),
        "variance": float(e.astype(np.float64).var()),
        "psnr": psnr(reference, e),
        "ssim": ssim(reference, e),
        "epi": edge_preservation_index(reference, e),
        "contrast_gain": contrast_gain(reference, e),
    }


def compare_enhancements(images: Iterable[np.ndarray], methods: Sequence[str] | None = None) -> list[dict]:
    """Table rows, one per method: the measures averaged over ``images`` (plus ``n`` = images measured)."""
    names = list(methods or METHODS)
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown enhancement {', '.join(unknown)} (known: {', '.join(METHODS)})")
    sums: dict[str, dict[str, float]] = {m: {} for m in names}
    n = 0
    for image in images:
        ref = _u8(image)
        n += 1
        for m in names:
            for key, value in measure(ref, METHODS[m](ref)).items():
                sums[m][key] = sums[m].get(key, 0.0) + value
    if n == 0:
        raise ValueError("compare_enhancements needs at least one image")
    return [{"method": m, "n": n, **{k: v / n for k, v in sums[m].items()}} for m in names]


def format_table(rows: Sequence[dict]) -> str:
    """Markdown table of ``compare_enhancements`` rows (plus an ``eer`` column when rows carry one)."""
    has_eer = any("eer" in r for r in rows)
    head = "| method | images | mean | variance | PSNR dB | SSIM | EPI | contrast gain |"
    head += " EER |" if has_eer else ""
    lines = [head, "|" + "---|" * (8 + has_eer)]
    for r in rows:
        line = (f"| {r['method']} | {r['n']} | {r['mean']:.1f} | {r['variance']:.0f} | {r['psnr']:.1f} | "
                f"{r['ssim']:.3f} | {r['epi']:.3f} | {r['contrast_gain']:.2f} |")
        if has_eer:
            line += f" {r['eer'] * 100:.2f} % |" if r.get("eer") is not None else " - |"
        lines.append(line)
    return "\n".join(lines)
