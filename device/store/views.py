"""What the store hands out: galleries for matching and user summaries for ``biolock users list``.

Plain frozen dataclasses, so callers cannot change the store through them; the gallery matrix is read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gallery:
    """Every template of one model: row ``i`` of ``matrix`` belongs to ``users[i]``'s ``fingers[i]``."""

    users: list[str]
    fingers: list[str]
    matrix: np.ndarray  # (n, d) float32


@dataclass(frozen=True)
class EnrolmentInfo:
    finger: str
    modality: str
    model_id: str
    templates: int
    created: float


@dataclass(frozen=True)
class UserInfo:
    name: str
    fingers: list[str]
    modality: str  # comma-separated when a user is enrolled in several modalities
    model_id: str  # likewise
    templates: int
    created: float
    needs_reenrol: bool
    enrolments: list[EnrolmentInfo]
