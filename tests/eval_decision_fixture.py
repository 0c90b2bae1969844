"""A tiny real decision for the registry test: the mean grey level of an image, scored by closeness.

It is a genuine (if useless) matcher, registered the way a new matcher is: one entry in ``DECISIONS``.
"""

from __future__ import annotations

import numpy as np

from device.evaluation.decisions import AcquireError, DecisionOptions


class MeanGrey:
    name = "meangrey"
    cheap = True

    def __init__(self, options: DecisionOptions) -> None:
        self.modality = options.modality
        self.matcher_id = "meangrey@1"
        self.thresholds = {"1e-3": -1.0, "1e-4": -0.5, "2e-5": -0.1}
        self.card_path = None

    def extract(self, image: np.ndarray) -> float:
        m = float(np.mean(image))
        if m > 250:
            raise AcquireError("saturated")
        return m

    def compare(self, templates, pairs: np.ndarray) -> np.ndarray:
        t = np.asarray(templates, dtype=np.float64)
        return -np.abs(t[pairs[:, 0]] - t[pairs[:, 1]])

    def close(self) -> None:
        pass


def meangrey_decision(options: DecisionOptions) -> MeanGrey:
    return MeanGrey(options)
