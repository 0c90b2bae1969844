"""Timings of biolock's own fingerprint matcher for ``biolock bench`` (issue 15's speed targets).

Why here and not in the bench command: the bench times the embedding path; this adds what the default decision
costs now that minutiae decide: extraction, one comparison (templates' cylinders cached, as for a user's enrolled
captures), extraction plus one comparison from nothing (both cylinders built), and identification among 1,000
enrolled fingers x 5 captures, where the embedding shortlists ``SHORTLIST`` users whose best-cosine capture each
(``CAPTURES``) is then compared by minutiae (cylinders cold: the worst case; warm: fingers seen since start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from device.pipeline import SHORTLIST
from device.pipeline import SHORTLIST_CAPTURES as CAPTURES  # what identify compares in a large gallery


def matcher_stages(render: Callable[[int, int], np.ndarray], timed: Callable[..., dict[str, float]], repeat: int,
                   embedding_size: int = 128) -> dict[str, dict[str, float]]:
    """Stage timings (``timed``'s dicts) on prints from ``render(finger, impression)``; {} if none extracts."""
    from device.fingerprint.matcher import BiolockMatcher
    from device.matching import identify
    from device.minutiae import MinutiaeError

    m = BiolockMatcher()
    probe_img = render(1, 1)
    try:
        enrolled = m.extract(render(1, 0))
        probe = m.extract(probe_img)
        others = [m.extract(render(100 + u, k)) for u in range(SHORTLIST) for k in range(CAPTURES)]
    except MinutiaeError:
        return {}
    stages = {"fp_extract": timed(lambda: m.extract(probe_img), repeat),
              "fp_compare": timed(lambda: m.compare(probe, enrolled), repeat * 5)}
    stages["fp_extract_compare"] = timed(lambda: BiolockMatcher().compare(m.extract(probe_img), enrolled), repeat)
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(5000, embedding_size)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    users = [f"user{i // 5}" for i in range(5000)]
    vector = gallery[7] + 0.1

    def identify_once(matcher: Any) -> None:  # the probe's template is given (its extraction is timed above)
        shortlist = identify(vector, gallery, users, top=SHORTLIST)
        assert len(shortlist) == SHORTLIST
        for t in others:  # 40 users x their best-cosine capture (impostors: no early stop)
            matcher.compare(probe, t)

    stages["fp_identify_1000x5_warm"] = timed(lambda: identify_once(m), max(3, repeat // 10))
    stages["fp_identify_1000x5_cold"] = timed(lambda: identify_once(BiolockMatcher()), max(3, repeat // 10))
    return stages
