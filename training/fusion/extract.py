"""Per-image features for the fusion report, with the time each stage takes.

Stages (named as in the report's timing table):
- ``enhancement``: device.preprocess (segmentation/ROI + its contrast enhancement, the current preprocessing
  version, which is part of the cache key) at the handcrafted working size;
- ``loggabor`` / ``dog``: handcrafted extraction (device.features);
- ``deep``: preprocess at the model's input size + LiteRT embedding through device.inference (when a model card is
  given or shipped);
- vein only: ``miura`` (maximum curvature, training.classic.miura, on a 100 x 300 ROI), ``line-tracking`` and
  ``wide-line`` (64 x 192).
A feature rejection (blank/saturated/non-finger) is counted and its row gets a zero vector (scores 0), so the
pairs stay comparable across matchers; the report prints the count.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.features import DogParams, FeatureRejection, LogGaborParams, extract_dog, extract_loggabor
from device.progress import tqdm

CACHE_VERSION = 1  # bump when a handcrafted extractor changes its output
FP_WORK = (160, 160)  # fingerprint ridge period ~4-6 px here: well inside the Log-Gabor band
VEIN_WORK = (100, 300)  # FV-USM ROI size; Miura's parameters are for it
LG_PARAMS = {
    "fingerprint": LogGaborParams(size=FP_WORK, grid=(4, 4), band=(0.05, 0.35)),
    "vein": LogGaborParams(size=(64, 192), grid=(2, 6), band=(0.015, 0.3)),
}
DOG_PARAMS = {
    "fingerprint": DogParams(size=FP_WORK, grid=(4, 4), band=(0.05, 0.35)),
    "vein": DogParams(size=(64, 192), grid=(2, 6), band=(0.015, 0.3)),
}
# Miura matching margins (rows, columns) per map size: 10/30 on 100 x 300 as in training.classic.miura
MARGINS = {(100, 300): (10, 30), (64, 192): (6, 19)}


@dataclass
class Features:
    blocks: dict[str, np.ndarray] = field(default_factory=dict)  # vector features (n, d)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)  # binary vein maps
    timings_ms: dict[str, list[float]] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    low_quality: int = 0
    deep_model: str | None = None

    def time(self, stage: str, ms: float) -> None:
        self.timings_ms.setdefault(stage, []).append(ms)


def _timed(feats: Features, stage: str, fn: Callable[[], object]) -> object:
    t0 = time.perf_counter()
    out = fn()
    feats.time(stage, (time.perf_counter() - t0) * 1000)
    return out


def _vector(feats: Features, stage: str, fn: Callable[[], np.ndarray], width: int) -> np.ndarray:
    try:
        return _timed(feats, stage, fn)
    except FeatureRejection:
        feats.rejected[stage] = feats.rejected.get(stage, 0) + 1
        return np.zeros(width, np.float32)


def extract_all(images: list[np.ndarray], modality: str, embedder=None, maps: bool = True,
                desc: str = "features", rlt_iterations: int = 1000, cache_dir: Path | None = None) -> Features:
    """Every feature of ``images`` (uint8 grey sensor images of one ``modality``).

    With ``cache_dir``, the handcrafted part (vectors, maps, their timings) is stored under a hash of the images
    and settings and reused by the next run; deep features are always computed afresh (they are quick, and the
    model may have changed).
    """
    key = _cache_key(images, modality, maps, rlt_iterations)
    path = None if cache_dir is None else Path(cache_dir) / f"{modality}-{key}.pkl"
    if path is not None and path.is_file():
        with path.open("rb") as fh:
            feats = pickle.load(fh)
    else:
        feats = _handcrafted(images, modality, maps, desc, rlt_iterations)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as fh:
                pickle.dump(feats, fh)
            tmp.replace(path)
    if embedder is not None:
        _deep(images, modality, embedder, feats)
    return feats


def _cache_key(images: list[np.ndarray], modality: str, maps: bool, rlt_iterations: int) -> str:
    """Hash of the images and settings, and of the preprocessing version the handcrafted features use (the
    current one; v1 ids are left out of the hash so caches written before versions existed stay valid)."""
    from device.preprocess import check_preprocessing_id

    prep = check_preprocessing_id(modality, None) if modality in ("fingerprint", "vein") else ""
    prep = "" if prep.endswith("-v1") else f"|{prep}"
    h = hashlib.sha256(f"{CACHE_VERSION}|{modality}|{maps}|{rlt_iterations}{prep}".encode())
    for im in images:
        h.update(str(im.shape).encode())
        h.update(np.ascontiguousarray(im).tobytes())
    return h.hexdigest()[:20]


def _deep(images: list[np.ndarray], modality: str, embedder, feats: Features) -> None:
    from device.preprocess import preprocess

    feats.deep_model = getattr(embedder, "model_id", None)
    prep_id = getattr(getattr(embedder, "card", None), "preprocessing", None)  # the card's version (None: current)
    feats.timings_ms.pop("deep", None)
    rows = []
    for image in images:
        def deep(image=image) -> np.ndarray:
            return embedder.embed(preprocess(image, modality, embedder.input_size, prep_id).image)

        rows.append(_timed(feats, "deep", deep))
    feats.blocks["deep"] = np.stack(rows).astype(np.float32)


def _handcrafted(images: list[np.ndarray], modality: str, maps: bool, desc: str, rlt_iterations: int) -> Features:
    from device.preprocess import preprocess

    feats = Features()
    size = FP_WORK if modality == "fingerprint" else VEIN_WORK
    lg_p, dog_p = LG_PARAMS[modality], DOG_PARAMS[modality]
    lg_w = lg_p.scales * lg_p.orientations * lg_p.grid[0] * lg_p.grid[1] * 3
    dog_w = dog_p.scales * dog_p.grid[0] * dog_p.grid[1] * 3
    rows: dict[str, list] = {"loggabor": [], "dog": [], "miura": [], "line-tracking": [], "wide-line": []}
    from training.classic.line_tracking import LineTrackingParams

    rlt = LineTrackingParams(iterations=rlt_iterations)
    for image in tqdm(images, desc=desc, leave=False, mininterval=2.0):
        pre = _timed(feats, "enhancement", lambda image=image: preprocess(image, modality, size))
        feats.low_quality += int(not pre.quality.ok)
        picture = pre.image
        rows["loggabor"].append(_vector(feats, "loggabor", lambda p=picture: extract_loggabor(p, lg_p), lg_w))
        rows["dog"].append(_vector(feats, "dog", lambda p=picture: extract_dog(p, dog_p), dog_w))
        if maps and modality == "vein":
            from training.classic.line_tracking import extract_line_tracking
            from training.classic.miura import maximum_curvature
            from training.classic.wide_line import extract_wide_line

            u8 = np.clip(picture * 255.0, 0, 255).astype(np.uint8)
            rows["miura"].append(_timed(feats, "miura", lambda p=picture: maximum_curvature(p.astype(np.float64))))
            rows["line-tracking"].append(_timed(feats, "line-tracking", lambda u=u8: extract_line_tracking(u, rlt)))
            rows["wide-line"].append(_timed(feats, "wide-line", lambda u=u8: extract_wide_line(u)))
    for name in ("loggabor", "dog"):
        if rows[name]:
            feats.blocks[name] = np.stack(rows[name]).astype(np.float32)
    for name in ("miura", "line-tracking", "wide-line"):
        if rows[name]:
            feats.maps[name] = [np.asarray(m, dtype=np.uint8) for m in rows[name]]
    return feats


def miura_score(a: np.ndarray, b: np.ndarray) -> float:
    """Miura matching with margins scaled to the map size."""
    from training.classic.miura import miura_match

    ch, cw = MARGINS.get(a.shape, (max(1, a.shape[0] // 10), max(1, a.shape[1] // 10)))
    return miura_match(a, b, ch, cw)


def load_embedder(modality: str, card: str | None):
    """A LiteRT embedder for ``card`` (or the shipped model); None with the reason when there is none."""
    from device.config import InferenceConfig
    from device.errors import BiolockError
    from device.inference import build_embedder

    try:
        return build_embedder(InferenceConfig(), card, modality=modality), None
    except BiolockError as exc:
        return None, str(exc)
