"""What the store hands out: galleries for matching and user summaries for ``biolock users list``.

Plain frozen dataclasses, so callers cannot change the store through them; the gallery matrix is read-only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gallery:
    """Every template of one model: row ``i`` of ``matrix`` belongs to ``users[i]``'s ``fingers[i]``."""

    users: list[str]
    fingers: list[str]
    matrix: np.ndarray  # (n, d) float32


@dataclass(frozen=True)
class ByteGallery:
    """Every byte template of one model: ``templates[i]`` belongs to ``users[i]``'s ``fingers[i]``."""

    users: tuple[str, ...]
    fingers: tuple[str, ...]
    templates: tuple[bytes, ...]


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


def user_infos(conn: sqlite3.Connection, current: dict[str, str], only: str | None = None) -> list[UserInfo]:
    """Everyone enrolled (or just user ``only``), by name; ``needs_reenrol`` against ``current`` (modality -> current
    model id)."""
    result = []
    rows = (conn.execute("SELECT id, name, created FROM users ORDER BY name") if only is None else
            conn.execute("SELECT id, name, created FROM users WHERE name = ?", (only,)))
    for user_id, name, created in rows.fetchall():
        enrolments = [EnrolmentInfo(*r) for r in conn.execute(
            "SELECT finger, modality, model_id, count, created FROM enrolments WHERE user_id = ? "
            "ORDER BY finger, modality", (user_id,))]
        result.append(UserInfo(
            name=name,
            fingers=sorted({e.finger for e in enrolments}),
            modality=",".join(sorted({e.modality for e in enrolments})),
            model_id=",".join(sorted({e.model_id for e in enrolments})),
            templates=sum(e.templates for e in enrolments),
            created=float(created),
            needs_reenrol=any(e.modality in current and current[e.modality] != e.model_id for e in enrolments),
            enrolments=enrolments,
        ))
    return result
