"""Pairing a user's embedding templates with their minutiae templates (one of each per enrolment capture).

Both are stored by the same enrolment, in one transaction and in capture order, as two enrolments (modality
``fingerprint`` and ``fingerprint-minutiae``); galleries list rows by enrolment then insertion, so a finger's
captures line up. When they do not (enrolled while minutiae were off, or with another backend), the user is
decided on the embedding alone, at the model card's own threshold: calibrated, just less accurate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device.matching import cosine_scores
from device.minutiae.base import unpack_template
from device.store.views import Gallery


@dataclass(frozen=True)
class Templates:
    embedding: Gallery
    minutiae: Gallery | None  # None when minutiae are off
    # user -> (embedding rows, minutiae rows), built on first use: one pass over each gallery, not one per user
    # (identify in a large gallery asks for 40 users; scanning 5,000 rows for each cost ~20 ms)
    _rows: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict, compare=False, repr=False)

    def rows_of(self, user: str) -> tuple[list[int], list[int]]:
        if not self._rows:
            for i, u in enumerate(self.embedding.users):
                self._rows.setdefault(u, ([], []))[0].append(i)
            for i, u in enumerate(self.minutiae.users if self.minutiae is not None else []):
                self._rows.setdefault(u, ([], []))[1].append(i)
        return self._rows.get(user, ([], []))


def user_templates(galleries: Templates, user: str, vector: np.ndarray,
                   captures: int | None = None) -> tuple[np.ndarray, list[bytes] | None]:
    """The probe's cosine with each of ``user``'s templates and, when they pair up, their minutiae templates.

    ``captures``: only that many, the best cosines first (the others' minutiae templates are not even unpacked)."""
    emb = galleries.embedding
    rows, m_rows = galleries.rows_of(user)
    cosines = cosine_scores(vector, np.asarray(emb.matrix)[rows]) if rows else np.zeros(0, dtype=np.float32)
    mnt = galleries.minutiae
    if mnt is None or not rows:
        return cosines, None
    if [emb.fingers[i] for i in rows] != [mnt.fingers[i] for i in m_rows]:
        return cosines, None
    if captures is not None and len(rows) > captures:
        top = np.argsort(-cosines, kind="stable")[:captures]
        cosines, m_rows = cosines[top], [m_rows[i] for i in top]
    matrix = np.asarray(mnt.matrix)
    return cosines, [unpack_template(matrix[i]) for i in m_rows]
