"""The vein line matcher's rows of ``biolock bench``: region, line template, one comparison, and their sum.

The issue-19 target is on ``vein_lines_extract_compare``: the region step, the line template and one comparison
of one whole frame in <= 20 ms median on one thread (Miura's maximum curvature alone: 500+ ms here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

TARGET_MS = 20.0


def vein_stages(image: np.ndarray, repeat: int, timed: Callable[..., dict[str, float]]) -> dict[str, dict[str, float]]:
    """Timings (``timed``'s dicts) of the line matcher on ``image``; an empty dict when it has no finger region."""
    from device.minutiae.base import MinutiaeError
    from device.vein.backend import LineMatcher
    from device.vein.region import find_region

    try:
        enrolled = LineMatcher().extract(image)
    except MinutiaeError:
        return {}

    def extract() -> Any:
        return LineMatcher().extract(image)  # a fresh matcher: no memo, the region is found every time

    def extract_compare() -> float:
        m = LineMatcher()
        return m.compare(m.extract(image), enrolled)

    matcher = LineMatcher()
    return {"vein_region": timed(lambda: find_region(image), repeat),
            "vein_lines_extract": timed(extract, repeat),
            "vein_lines_compare": timed(lambda: matcher.compare(enrolled, enrolled), repeat),
            "vein_lines_extract_compare": timed(extract_compare, repeat)}
