"""ISO/IEC 19794-2:2005 finger minutiae record export (one finger view, no extended data).

Why: the standard record lets other matchers (NBIS bozorth3, commercial SDKs) compare biolock's minutiae, which is
how the extractor is judged against NBIS's own, and lets a user take their template elsewhere. Angles are stored in
units of 360/256 degrees, counter-clockwise from the x axis; quality 0-100; resolution in pixels per centimetre.
"""

from __future__ import annotations

import struct

import numpy as np

from device.fingerprint.minutia import BIFURCATION, ENDING, Minutiae

_TYPE_BITS = {ENDING: 1, BIFURCATION: 2}


def to_iso19794_2(m: Minutiae, finger_position: int = 0, impression_type: int = 0) -> bytes:
    """The record for ``m`` (at most 255 minutiae, the best by quality kept)."""
    order = np.argsort(-m.quality, kind="stable")[:255]
    h, w = m.shape
    ppcm = int(round(m.dpi / 2.54))
    body = bytearray()
    for i in sorted(order.tolist()):
        x = int(np.clip(round(float(m.xy[i, 0])), 0, 0x3FFF))
        y = int(np.clip(round(float(m.xy[i, 1])), 0, 0x3FFF))
        t = _TYPE_BITS.get(int(m.kind[i]), 0)
        a = int(round(float(m.angle[i]) * 256 / (2 * np.pi))) % 256
        q = int(np.clip(round(float(m.quality[i]) * 100), 0, 100))
        body += struct.pack(">HHBB", (t << 14) | x, y, a, q)
    finger_q = int(np.clip(round(float(np.mean(m.quality)) * 100), 0, 100)) if len(m) else 0
    view = struct.pack(">BBBB", finger_position, impression_type & 0x0F, finger_q, len(order)) + bytes(body)
    view += struct.pack(">H", 0)  # no extended data
    length = 24 + len(view)
    header = b"FMR\x00" + b" 20\x00" + struct.pack(">IHHHHHBB", length, 0, w, h, ppcm, ppcm, 1, 0)
    return header + view
