"""Per-identity attributes of synthetic fingerprints: pattern class, sex and ridge density.

Pattern-class proportions (Wilson, Candela and Watson 1994, NIST, as quoted by Maltoni et al., Handbook of
Fingerprint Recognition, and used by SFinGe): arch 3.7 %, tented arch 2.9 %, left loop 33.8 %, right loop 31.7 %,
whorl 27.9 %.

Ridge density by sex. Dermatoglyphic studies count the ridges crossing the diagonal of a 5 mm x 5 mm square
(Acree 1999, Forensic Sci. Int. 102:35-44, and the studies that follow his method). Women have finer ridges:
- Sohag University study (Egypt, 150 men and 150 women; Mansoura J. Forensic Med. Clin. Toxicol., 2019):
  women 17.74 +- 1.63 ridges / 25 mm^2, men 15.02 +- 1.33;
- Punjab study (Springer Open, 2016): women 13.94, men 12.32 ridges / 25 mm^2;
- Gutierrez-Redomero et al. 2008 (Forensic Sci. Int. 180:17-22, Spanish sample): women significantly higher in
  the radial and ulnar (distal) areas, not in the proximal area.
We use the mean of the Sohag and Punjab means per sex (women 15.84, men 13.67 ridges / 25 mm^2) with the Sohag
spreads. A count n along the 7.07 mm diagonal gives a ridge period of 7.07 mm / n, i.e. (7.07 / n) * 500 / 25.4
px at 500 dpi: men 13.67 -> 10.2 px, women 15.84 -> 8.8 px, 9.5 px overall. That matches the ~9 px mean ridge
period usually quoted at 500 dpi and the 9.45 px we measure on the five FVC sample sets in ../shared/data
(normalized to 500 dpi; see docs/synthetic-data.md); the Sohag figures alone would give 8.6 px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synth.orientation import PATTERN_CLASSES

CLASS_PROPORTIONS = {"arch": 0.037, "tented_arch": 0.029, "left_loop": 0.338, "right_loop": 0.317, "whorl": 0.279}

DIAGONAL_MM = 5.0 * np.sqrt(2.0)
RIDGES_PER_25MM2 = {"female": (15.84, 1.63), "male": (13.67, 1.33)}  # mean, sd (two studies pooled, see above)
PERIOD_LIMITS_PX = (6.5, 12.5)  # at 500 dpi; keeps the Gabor bank small and avoids unprintable periods


def ridges_to_period_px(ridge_count: float, dpi: float = 500.0) -> float:
    """Ridge period in pixels for a count of ridges along the 5 mm square's diagonal."""
    return DIAGONAL_MM / ridge_count * dpi / 25.4


@dataclass(frozen=True)
class FingerAttributes:
    """What the manifest records about one synthetic finger."""

    pattern_class: str
    sex: str
    ridge_count: float  # ridges per 25 mm^2 (diagonal count)
    ridge_period: float  # mean ridge period in px at 500 dpi


def sample_attributes(rng: np.random.Generator) -> FingerAttributes:
    """Draw a pattern class, a sex (1:1) and a ridge density from the published figures above."""
    probs = np.array([CLASS_PROPORTIONS[c] for c in PATTERN_CLASSES])
    pattern = PATTERN_CLASSES[int(rng.choice(len(PATTERN_CLASSES), p=probs / probs.sum()))]
    sex = "female" if rng.random() < 0.5 else "male"
    mean, sd = RIDGES_PER_25MM2[sex]
    count = float(rng.normal(mean, sd))
    period = float(np.clip(ridges_to_period_px(max(count, 1.0)), *PERIOD_LIMITS_PX))
    return FingerAttributes(pattern, sex, round(count, 2), round(period, 3))
