"""Tuning constants of the fingerprint extractor (and, in its own section, the matcher), in one place.

Lengths are in pixels at the extractor's working resolution, ``WORK_DPI``: images from another resolution are scaled
to it first, so one set of numbers serves every sensor. Each value was chosen by the EER it gives with a fixed
matcher on the FVC DB_B sets (``python -m training.fp_extract_bench``), not by eye.
"""

from __future__ import annotations

# --- Extraction -----------------------------------------------------------------------------------------------
WORK_DPI = 500
# Within this relative distance of WORK_DPI the image is used as it is: the ridge-period estimate absorbs the
# difference and resampling costs detail (FVC2002 DB2_B, 569 dpi: MCC EER 1.78 % resampled, 0.70 % native).
RESAMPLE_TOLERANCE = 0.15
DEFAULT_PERIOD = 9.0  # px: mean inter-ridge distance of adult fingers at 500 dpi (about 0.46 mm)
PERIOD_RANGE = (6.5, 13.0)  # px: a global period estimate outside this is not trusted (DEFAULT_PERIOD is used)

# Input checks (on the grey image as given)
BLANK_STD = 6.0  # grey levels: a capture flatter than this has no ridges at all
SATURATED_SHARE = 0.85  # share of pixels at 0 or 255 above which the capture is called saturated

# Foreground segmentation (block statistics on a BLOCK-px grid)
BLOCK = 8
SEG_ENERGY_FRACTION = 0.12  # a block is foreground when its band-pass variance exceeds this share of the 95th pct.
SEG_MIN_COHERENCE = 0.25  # ... and its gradients agree at least this much
SEG_CLOSE_BLOCKS = 2  # morphological closing / opening radius, in blocks
MIN_FOREGROUND_PX = 6000  # at 500 dpi, about 24 mm^2: less is "no finger"
# "classic" (the two thresholds above) or "learned" (a tiny int8 CNN, device/fingerprint/learned_segment.py;
# docs/fingerprint.md, "Learned stage")
SEGMENTER = "classic"

# Orientation field
GRAD_SIGMA = 1.0  # px: derivative-of-Gaussian scale
ORIENT_SIGMA = 1.5  # blocks: smoothing of the doubled-angle field on the block grid

# Gabor enhancement
N_ORIENTATIONS = 8  # filters; the response is interpolated between the two nearest orientations
GABOR_SIGMA_FACTOR = 0.5  # envelope sigma = this x period (isotropic: exactly a sum of two separable filters)

# Minutiae
BORDER_DIST = 0.8  # periods: minutiae closer than this to the foreground edge are dropped
TRACE_STEPS = 20  # skeleton steps traced from every minutia
DIR_STEPS = 9  # steps along the ridge that give a minutia's direction
SPUR_LEN = 0.6  # periods: an ending that reaches a bifurcation within this is a spur (both dropped)
SHORT_LEN = 0.8  # periods: a ridge piece with two endings no longer than this is noise
BRIDGE_LEN = 0.5  # periods: two bifurcations joined by a skeleton path this short are a bridge or hole
BREAK_DIST = 1.4  # periods: two endings facing each other closer than this are a broken ridge
BREAK_ANGLE = 0.7  # rad: how far from exactly facing a break may be
CLUSTER_RADIUS = 0.9  # periods
CLUSTER_MAX = 2  # a minutia with more than this many others within CLUSTER_RADIUS sits in noise
MIN_MINUTIAE = 6  # fewer than this cannot be matched reliably: FingerprintError
MIN_COHERENCE = 0.15  # minutiae where the orientation field is this incoherent are dropped
