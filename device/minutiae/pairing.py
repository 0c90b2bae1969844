"""Pairing a user's embedding templates with their minutiae templates (one of each per enrolment capture).

Both are stored by the same enrolment, in one transaction and in capture order, as two enrolments (modality
``fingerprint`` and ``fingerprint-minutiae``); galleries list rows by enrolment then insertion, so a finger's
captures line up. When they do not (enrolled while minutiae were off, or with another backend), the user is
decided on the embedding alone, at the model card's own threshold: calibrated, just less accurate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.matching import cosine_scores
from device.minutiae.base import unpack_template
from device.store.views import Gallery


@dataclass(frozen=True)
class Templates:
    embedding: Gallery
    minutiae: Gallery | None  # None when minutiae are off


def user_templates(galleries: Templates, user: str, vector: np.ndarray) -> tuple[np.ndarray, list[bytes] | None]:
    """The probe's cosine with each of ``user``'s templates and, when they pair up, their minutiae templates."""
    emb = galleries.embedding
    rows = [i for i, u in enumerate(emb.users) if u == user]
    cosines = cosine_scores(vector, np.asarray(emb.matrix)[rows]) if rows else np.zeros(0, dtype=np.float32)
    mnt = galleries.minutiae
    if mnt is None or not rows:
        return cosines, None
    m_rows = [i for i, u in enumerate(mnt.users) if u == user]
    if [emb.fingers[i] for i in rows] != [mnt.fingers[i] for i in m_rows]:
        return cosines, None
    matrix = np.asarray(mnt.matrix)
    return cosines, [unpack_template(matrix[i]) for i in m_rows]
