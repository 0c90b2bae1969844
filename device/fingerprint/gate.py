"""The fingerprint quality gate: a capture's template only when its quality is high enough for what it is for.

Why a gate on our own score and not only the preprocessing one (area + coherence, ``device.quality``): the score
of ``device.fingerprint.quality`` sees what the matcher will get (the minutiae, how many candidates the cleaning
had to remove, the worst-coherence tenth of the finger) and predicts failures to match on real prints
(docs/fingerprint.md, "Quality"). A verify/identify capture below ``VERIFY_MIN`` is refused with what to do, and
the person touches again (not a failed attempt); an enrolment capture must reach the stricter ``ENROL_MIN``,
since enrolled captures take part in every later comparison.

Fail closed: a capture the extractor refuses, or one below the gate, gives no template, so it cannot be compared.
Only biolock's own extractor has this score; other backends (NBIS, partial prints, a subclass with another
extractor, veins) are passed through to their own ``extract`` and their own checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from device.fingerprint.quality import ENROL_MIN, VERIFY_MIN, ImageQuality
from device.minutiae.base import MinutiaeError


def minimum(enrol: bool) -> float:
    """The quality a capture needs: for enrolment or for a verify/identify touch."""
    return ENROL_MIN if enrol else VERIFY_MIN


def refusal(quality: ImageQuality, enrol: bool) -> str:
    """The message for a capture below the gate: what to do first, then the numbers."""
    need = minimum(enrol)
    purpose = "enrolment needs" if enrol else "needs"
    return f"{quality.advice} (capture quality {quality.score:.2f}; {purpose} {need:.2f})"


def gated(matcher: Any) -> bool:
    """Whether ``matcher`` extracts with biolock's own extractor (the one that scores quality)."""
    from device.fingerprint.matcher import BiolockMatcher

    return isinstance(matcher, BiolockMatcher) and \
        type(matcher).extract_minutiae is BiolockMatcher.extract_minutiae and \
        type(matcher).extract is BiolockMatcher.extract


def template(matcher: Any, grey: np.ndarray, enrol: bool = False) -> bytes:
    """``matcher.extract(grey)``, refusing (``MinutiaeError`` with advice) a biolock capture below the gate."""
    if not gated(matcher):
        return matcher.extract(grey)
    from device.fingerprint.errors import FingerprintError
    from device.fingerprint.extract import extract_with_quality
    from device.fingerprint.template import encode

    try:
        minutiae, quality = extract_with_quality(grey, matcher.dpi)
    except FingerprintError as exc:
        raise MinutiaeError(str(exc)) from None
    if not quality.score >= minimum(enrol):  # NaN fails too
        raise MinutiaeError(refusal(quality, enrol))
    return encode(minutiae)
