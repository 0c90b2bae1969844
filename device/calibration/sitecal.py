"""Site calibration: every enrolled user's stored captures against every other user's, plus optional strangers.

Why stored templates: the store keeps embeddings (and minutiae templates), never images, so the site's pairs
are scored from them with the same score the device decides on (fused when minutiae are on, else cosine).
Genuine pairs: two captures of one enrolled finger; impostor pairs: captures of two different users (two fingers
of one user are neither). Strangers (a folder of images of people not enrolled) add impostor pairs against every
stored capture. Thresholds only tighten: each level's new threshold is the higher of the one in force and the one
this site's pairs need (``device.calibration.fit.fit_levels``), unless ``allow_looser``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
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


def users_needed(claim: float, captures: int = 5) -> int:
    """Enrolled users (``captures`` each) whose cross-user pairs alone could show ``claim`` (zero false matches)."""
    need = math.ceil(-math.log(1 - CONFIDENCE) / claim)
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

    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConfigError(f"{folder}: no images found for --strangers")
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


def site_thresholds(scores: SiteScores, in_force: dict[str, float], allow_looser: bool) -> dict[str, float]:
    """The higher of the thresholds in force and those the site's pairs need (or the latter, ``allow_looser``)."""
    sets = {"site": (scores.genuine, scores.impostor)}
    if scores.strangers.size:
        sets["strangers"] = (np.zeros(0), scores.strangers)
    fitted = fit_levels(sets)
    out, floor = {}, -np.inf
    for key in LEVEL_KEYS.values():
        t = fitted[key] if allow_looser else max(fitted[key], in_force[key])
        out[key] = floor = max(float(t), floor)
    return out


def build_site(auth: Any, scores: SiteScores, thresholds: dict[str, float], card_thresholds: dict[str, float],
               card_calibration: Any, matcher: str) -> dict:
    """The site calibration file's content (see ``device.calibration.site``)."""
    sets = {f"site:{scores.users} users": (scores.genuine, scores.impostor)}
    if scores.strangers.size:
        sets[f"site:{scores.strangers_used} strangers"] = (np.zeros(0), scores.strangers)
    cal = measure(sets, thresholds, f"site calibration ({matcher}), every cross-user pair of stored captures")
    card_supported = [lv for lv, key in LEVEL_KEYS.items() if card_calibration is not None
                      and card_calibration.supported(lv) and thresholds[key] >= card_thresholds[key]]
    return {"format": "biolock-site-calibration/1", "matcher": matcher, "created": date.today().isoformat(),
            "enrolled_users": scores.users, "captures": scores.captures, "strangers": scores.strangers_used,
            "thresholds": thresholds, "card_thresholds": card_thresholds, "card_supported": card_supported,
            "calibration": cal.to_dict()}


def claims() -> dict[str, float]:
    return {lv: CLAIMS[key] for lv, key in LEVEL_KEYS.items()}
