"""Finger vein from whole NIR frames: the finger region, a fast training-free line matcher, its store template.

- ``region.find_region``: the finger (not housing, not background) in a whole frame, straightened and
  width-normalized, or a ``RegionError`` with a reason a user can act on;
- ``lines.vein_map``: a Hessian valley map of the region (vectorized, training-free);
- ``match.compare``: shift-tolerant normalized cross-correlation of two maps;
- ``template``: the versioned template packed for the encrypted store; ``backend.LineMatcher``: the matcher the
  device fuses with the vein model (docs/vein.md).
"""
