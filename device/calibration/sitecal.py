"""Site calibration: every enrolled user's stored captures against every other user's, plus optional strangers.

Why stored templates: the store keeps embeddings (and minutiae templates), never images, so the site's pairs
are scored from them with the same score the device decides on (fused when minutiae are on, else cosine).
Genuine pairs: two captures of one enrolled finger; impostor pairs: captures of two different users (two fingers
of one user are neither). Strangers (a folder of images of people not enrolled) add impostor pairs against every
stored capture. Thresholds only tighten: each level's new threshold is the higher of the one in force and the one
this site's pairs need (``device.calibration.fit.fit_levels``), unless ``allow_looser``.

Small-sensor mode (``device.small_sensor``) stores one stitched placements template per enrolled finger and no
separate captures, so no genuine or cross-user pairs can be made from the store: its site pairs are strangers only
(``score_small_sensor_site``), each touch scored exactly as the device scores one (the authenticator's own
``_touch`` refusals, then ``verify_score`` against every enrolled finger's template). The file then records the
window (px at 500 dpi) the strangers were captured at: the touch size that measurement speaks for.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from device.calibration.bounds import CONFIDENCE
from device.calibration.fields import CLAIMS, LEVEL_KEYS
from device.calibration.fit import fit_levels, measure
from device.errors import ConfigError

MIN_USERS = 10
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")


class TooFewUsersError(ConfigError):
    """Not enough enrolled users to measure impostors on."""


def pairs_needed(claim: float) -> int:
    """Impostor pairs that, with zero false matches, show ``claim`` at the 95 % bound."""
    return math.ceil(-math.log(1 - CONFIDENCE) / claim)


def users_needed(claim: float, captures: int = 5) -> int:
    """Enrolled users (``captures`` each) whose cross-user pairs alone could show ``claim`` (zero false matches)."""
    need = pairs_needed(claim)
    u = 2
    while (u * captures) * (u * captures - captures) // 2 < need:
        u += 1
    return u


@dataclass
class SiteScores:
    genuine: np.ndarray
    impostor: np.ndarray
    strangers: np.ndarray
    users: int
    captures: int
    strangers_used: int
    strangers_rejected: int
    window: tuple[int, int] | None = None  # small-sensor mode: the strangers' touch size (px at 500 dpi)
    refusals: dict[str, int] = field(default_factory=dict)  # why stranger images were not scored -> how many
    small_sensor: bool = False  # strangers against placements templates only (no genuine, no cross-user pairs)


def _stored(auth: Any) -> tuple[list[tuple[str, str]], np.ndarray, list[bytes] | None]:
    """(identity per capture, embeddings, minutiae templates or None) of every user enrolled with this model."""
    from device.minutiae.base import MINUTIAE_MODALITY, unpack_template

    emb = auth.store.gallery(auth.modality, auth.model_id)
    ids = list(zip(emb.users, emb.fingers, strict=True))
    matrix = np.asarray(emb.matrix, dtype=np.float32)
    if auth.minutiae is None:
        return ids, matrix, None
    mnt = auth.store.gallery(MINUTIAE_MODALITY, auth.minutiae.matcher.template_id)
    m_ids = list(zip(mnt.users, mnt.fingers, strict=True))
    keep_e, keep_m = [], []
    for ident in dict.fromkeys(ids):  # users whose embedding and minutiae captures pair up, in store order
        e_rows = [i for i, x in enumerate(ids) if x == ident]
        m_rows = [i for i, x in enumerate(m_ids) if x == ident]
        if len(e_rows) == len(m_rows):
            keep_e += e_rows
            keep_m += m_rows
    m = np.asarray(mnt.matrix)
    return [ids[i] for i in keep_e], matrix[keep_e], [unpack_template(m[i]) for i in keep_m]


def _scorer(auth: Any, emb: np.ndarray, mnt: list[bytes] | None) -> Callable[[np.ndarray, Any, np.ndarray], np.ndarray]:
    """score(probe vector, probe minutiae, rows) -> the deciding scores of the probe against those stored rows."""
    def score(vector: np.ndarray, probe: Any, rows: np.ndarray) -> np.ndarray:
        cos = emb[rows] @ vector
        if mnt is None:
            return cos.astype(np.float64)
        return np.asarray(auth.minutiae.fused(cos, auth.minutiae.compare_all(probe, [mnt[r] for r in rows])))

    return score


def score_site(auth: Any, strangers: Path | None = None, progress: bool = True) -> SiteScores:
    """Every cross-user and same-finger pair of the stored captures, and strangers against every stored capture."""
    from tqdm import tqdm

    ids, emb, mnt = _stored(auth)
    users = len({u for u, _ in ids})
    if users < MIN_USERS:
        raise TooFewUsersError(
            f"site calibration needs at least {MIN_USERS} enrolled users with templates of {auth.model_id} "
            f"(has {users}); 'balanced' shown by this site's pairs alone needs about "
            f"{users_needed(1e-4)} users, or add --strangers")
    score = _scorer(auth, emb, mnt)
    labels = np.array([f"{u}\x00{f}" for u, f in ids])
    owners = np.array([u for u, _ in ids])
    gen, imp = [], []
    for a in tqdm(range(len(ids) - 1), desc="site pairs", disable=not progress or None, leave=False):
        b = np.arange(a + 1, len(ids))
        same = labels[b] == labels[a]
        other = owners[b] != owners[a]
        rows = b[same | other]
        if rows.size == 0:
            continue
        s = score(emb[a], None if mnt is None else mnt[a], rows)
        gen.append(s[same[same | other]])
        imp.append(s[other[same | other]])
    stranger_scores, used, rejected = _strangers(auth, strangers, score, len(ids), progress)
    cat = np.concatenate
    return SiteScores(cat(gen) if gen else np.zeros(0), cat(imp) if imp else np.zeros(0), stranger_scores, users,
                      len(ids), used, rejected)


def _strangers(auth: Any, folder: Path | None, score, n: int, progress: bool) -> tuple[np.ndarray, int, int]:
    if folder is None:
        return np.zeros(0), 0, 0
    from tqdm import tqdm

    from device.imageio import read_image

    paths = _image_paths(folder)
    out, used, rejected = [], 0, 0
    for p in tqdm(paths, desc="strangers", disable=not progress or None, leave=False):
        vector, problem = auth._probe(read_image(p), {})
        probe, why = auth._minutiae_of(read_image(p), {}) if vector is not None else (None, None)
        if vector is None or why is not None:
            rejected += 1
            continue
        used += 1
        out.append(score(vector, probe, np.arange(n)))
    return (np.concatenate(out) if out else np.zeros(0)), used, rejected


def _score_sets(scores: SiteScores, names: tuple[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The site's score sets that hold impostor pairs (small-sensor mode has no cross-user pairs at all)."""
    sets = {}
    if scores.impostor.size:
        sets[names[0]] = (scores.genuine, scores.impostor)
    if scores.strangers.size:
        sets[names[1]] = (np.zeros(0), scores.strangers)
    if not sets:
        raise ConfigError("site calibration found no impostor pairs to measure: nothing changed")
    return sets


def site_thresholds(scores: SiteScores, in_force: dict[str, float], allow_looser: bool,
                    integer_scores: bool = False) -> dict[str, float]:
    """The higher of the thresholds in force and those the site's pairs need (or the latter, ``allow_looser``).

    ``integer_scores`` (the partial matcher counts matches): a fitted threshold just above an impostor's count is
    rounded up to the next whole count, which accepts exactly the same scores and reads as the card's do."""
    fitted = fit_levels(_score_sets(scores, ("site", "strangers")))
    out, floor = {}, -np.inf
    for key in LEVEL_KEYS.values():
        f = float(fitted[key])
        if integer_scores and math.isfinite(f):
            f = float(math.ceil(f))
        t = f if allow_looser else max(f, in_force[key])
        out[key] = floor = max(float(t), floor)
    return out


def build_site(auth: Any, scores: SiteScores, thresholds: dict[str, float], card_thresholds: dict[str, float],
               card_calibration: Any, matcher: str) -> dict:
    """The site calibration file's content (see ``device.calibration.site``).

    ``card_calibration`` None: the card says nothing about this site (small-sensor strangers smaller than the
    card's window), so no level rests on the card; only the site's own measurement can support one."""
    sets = _score_sets(scores, (f"site:{scores.users} users", f"site:{scores.strangers_used} strangers"))
    pairs = ("every stranger touch against every enrolled finger's placements template" if scores.small_sensor
             else "every cross-user pair of stored captures")
    cal = measure(sets, thresholds, f"site calibration ({matcher}), {pairs}")
    card_supported = [lv for lv, key in LEVEL_KEYS.items() if card_calibration is not None
                      and card_calibration.supported(lv) and thresholds[key] >= card_thresholds[key]]
    out = {"format": "biolock-site-calibration/1", "matcher": matcher, "created": date.today().isoformat(),
           "enrolled_users": scores.users, "captures": scores.captures, "strangers": scores.strangers_used,
           "thresholds": thresholds, "card_thresholds": card_thresholds, "card_supported": card_supported,
           "calibration": cal.to_dict()}
    if scores.window is not None:
        out["window"] = [int(scores.window[0]), int(scores.window[1])]
    if scores.small_sensor:
        out["strangers_refused"] = scores.strangers_rejected
    return out


def _image_paths(folder: Path) -> list[Path]:
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConfigError(f"{folder}: no images found for --strangers")
    return paths


def score_small_sensor_site(auth: Any, folder: Path, expect_window: tuple[int, int] | None = None,
                            progress: bool = True) -> SiteScores:
    """Small-sensor mode: every stranger touch in ``folder`` against every enrolled finger's placements template.

    Each image goes through the authenticator's own ``_touch`` (the device's keypoints and refusals: blank,
    smudged, covers almost nothing, ...); a refused image is counted with its reason, never scored. The same image
    twice is one stranger (counted as refused). ``expect_window`` (an R30x module's size at 500 dpi): images of
    another size are not this sensor's touches and are refused; without it, the scored touches must share one
    size, which the site file records as the window its measurement speaks for.
    """
    from tqdm import tqdm

    from device.imageio import read_image
    from device.pipeline import repeated_capture
    from device.small_sensor import MODEL_ID, PARTIAL_MODALITY, same_window

    gallery = auth.store.byte_templates(PARTIAL_MODALITY, MODEL_ID)
    if not gallery.templates:
        raise ConfigError(f"nobody is enrolled with small-sensor templates of {MODEL_ID}: enrol the site's users "
                          "first (biolock enroll NAME), then calibrate against them")
    paths = _image_paths(folder)
    refusals: Counter[str] = Counter()
    seen: dict[bytes, int] = {}
    rows: list[np.ndarray] = []
    windows: Counter[tuple[int, int]] = Counter()
    for i, p in enumerate(tqdm(paths, desc="strangers", disable=not progress or None, leave=False)):
        image = read_image(p)
        window = auth._window(image)
        if repeated_capture(seen, np.asarray(image), i) is not None:
            refusals["the same image twice"] += 1
            continue
        if expect_window is not None and not same_window(window, expect_window):
            refusals[f"not this sensor's size ({window[0]}x{window[1]} px at 500 dpi, the sensor sees "
                     f"{expect_window[0]}x{expect_window[1]})"] += 1
            continue
        kp, problem = auth._touch(image, {})
        if kp is None:
            refusals[problem or "poor capture"] += 1
            continue
        windows[window] += 1
        rows.append(np.array([auth._score(kp, t) for t in gallery.templates], dtype=np.float64))
    sizes = sorted(windows)
    if any(not same_window(a, b) for a in sizes for b in sizes):
        found = ", ".join(f"{n} at {h}x{w}" for (h, w), n in sorted(windows.items()))
        raise ConfigError(f"{folder}: the strangers' touches have different sizes ({found} px at 500 dpi): a site "
                          "calibration speaks for one touch size; capture every stranger on this site's sensor")
    window = expect_window if expect_window is not None else (min(sizes) if sizes else None)
    used = len(rows)
    return SiteScores(np.zeros(0), np.zeros(0), np.concatenate(rows) if rows else np.zeros(0),
                      len(set(gallery.users)), len(gallery.templates), used, sum(refusals.values()), window,
                      dict(refusals), small_sensor=True)


def claims() -> dict[str, float]:
    return {lv: CLAIMS[key] for lv, key in LEVEL_KEYS.items()}
