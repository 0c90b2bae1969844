"""Tuning constants of preprocessing and quality, in one place (after SourceAFIS' ``Parameters``).

Why one module: thresholds are calibrated against real sensor images (see docs/data.md for the pass rates they
give); keeping them together makes a re-calibration one diff and keeps magic numbers out of the stages.
Intensities are on the 0..255 scale of the uint8 input unless a name says otherwise.
"""

from __future__ import annotations

# --- shared -----------------------------------------------------------------------------------------------------
MIN_SIDE = 24  # images with a side shorter than this cannot hold a usable finger
UNIFORM_STD = 2.0  # a grey-level standard deviation below this is a blank / uniform image
DARK_MEAN = 25.0  # mean grey level below this: "too dark"
BRIGHT_MEAN = 250.0  # mean grey level above this: "too bright" (fingerprint) / "overexposed" (vein)

# --- fingerprint ------------------------------------------------------------------------------------------------
FP_WORK_SIDE = 200  # images larger than this (longer side) are shrunk before segmentation, for speed
FP_BLOCK = 8  # block size (pixels of the working image) of the segmentation / orientation grid
FP_VARIANCE_FRACTION = 0.25  # a block is foreground if its std exceeds this fraction of the 90th percentile block
FP_MIN_BLOCK_STD = 4.0  # ... and at least this absolute std (grey levels)
FP_MIN_COHERENCE = 0.15  # ... and at least this orientation coherence (0 isotropic .. 1 perfect ridges)
FP_CROP_MARGIN = 0.04  # margin kept around the finger's bounding box, as a fraction of the image side
FP_NORM_SIGMA = 4.0  # contrast normalization window scale (box of 2*sigma+1 px of the working image, ~1.5 ridges)
FP_NORM_CLIP = 2.5  # contrast normalization maps mean +- this many std to [0, 1]
FP_BACKGROUND = 0.5  # value of pixels outside the finger after normalization (neutral grey)
# fingerprint-v2: ridge period in the model input (px); 96 px then spans ~21 ridges, about 10 mm of a 500 dpi print
FP2_RIDGE_PERIOD = 4.5
FP2_MIN_PERIOD = 6.0  # measured ridge periods (sensor px) are clamped to this range: real 500-569 dpi prints
FP2_MAX_PERIOD = 15.0  # measure 6.8-14.9 px (docs/data.md); outside that the estimate is likelier wrong than the finger
FP2_MIN_FREQUENCY_PERIOD = 2.5  # the ridge-period search covers periods from this (px of the working image) ...
FP2_MAX_FREQUENCY_PERIOD = 25.0  # ... to this
# quality
FP_MIN_AREA = 0.10  # foreground fraction of the image below this: "too little finger area"
FP_GOOD_AREA = 0.45  # foreground fraction at which the area term of the score saturates
FP_MIN_RIDGE_COHERENCE = 0.25  # mean coherence over the foreground below this: "smudged or unclear ridges"
FP_GOOD_COHERENCE = 0.65  # coherence at which the clarity term saturates
FP_MAX_DRIFT = 0.45  # median block drift above this (smooth blobs, slopes, edges; real prints <= 0.32): unclear ridges
FP_QUALITY_OK = 0.25  # overall score below this is rejected even if no single test failed

# --- finger vein ------------------------------------------------------------------------------------------------
VEIN_WORK_HEIGHT = 120  # raw frames are analysed at this height (finger edges, axis)
VEIN_BACKGROUND_RATIO = 0.6  # a row band darker than this fraction of the finger's brightness is background
VEIN_MIN_EDGE_STEP = 12.0  # grey-level step across a finger edge (working image) for it to count as an edge
VEIN_MIN_EDGE_COLUMNS = 0.3  # fewer columns than this with a finger edge: the image is a ready ROI crop
VEIN_LIT_FRACTION = 0.12  # the finger side of an edge is at least this fraction of the frame's 95th percentile
# crop mode: a column darker than this fraction of the brightest is background (real FV-USM columns: >= 0.23)
VEIN_CROP_DARK_COLUMN = 0.12
VEIN_CROP_MIN_LIT = 0.95  # crop mode: fewer lit columns than this: the finger lies across the frame
VEIN_ROI_MARGIN = 0.08  # fraction of the finger width trimmed inside each detected edge
VEIN_END_MARGIN = 0.05  # fraction of the finger length trimmed at each end of a raw frame
VEIN_TIP_WIDTH = 0.8  # columns narrower than this fraction of the median finger width are the fingertip
VEIN_MAX_TILT_DEG = 30.0  # rotations larger than this are not trusted (edges wrong): the frame is left as is
VEIN_FLATTEN_SIGMA = 0.125  # illumination blur, as a fraction of the ROI height (8 px at 64)
VEIN_STRETCH_STD = 3.0  # flattened detail: this many standard deviations either side fill 0..255
VEIN_CLAHE_CLIP = 1.5
VEIN_CLAHE_TILES = (2, 6)  # (rows, cols) of CLAHE tiles on the (64, 192) output
# quality
VEIN_DARK_P95 = 30.0  # 95th percentile below this: "too dark"
VEIN_SATURATED = 250  # grey level counted as saturated
VEIN_MAX_SATURATED = 0.30  # saturated fraction of the finger region above this: "overexposed" (0.20 refused 2 of the
# 18 real capture-box frames of vein/nir_raw_frames whose regions are 20-25 % saturated yet match; docs/vein.md)
VEIN_MIN_CONTRAST = 0.65  # local contrast (std of the high-passed ROI) below this: "too little contrast"
VEIN_GOOD_CONTRAST = 2.5
VEIN_MAX_NOISE_RATIO = 1.0  # pixel-level noise std over vein-scale std above this: noise, not a finger
VEIN_NOISE_FLOOR = 4.0  # ... and above this std (grey levels): sensor noise on a veinless finger is not "no finger"
VEIN_MIN_AREA = 0.15  # finger fraction of a raw frame below this: "too little finger area"
VEIN_BACKGROUND_LEVEL = 0.25  # an ROI pixel darker than this fraction of its 95th percentile is background
VEIN_MAX_ROI_BACKGROUND = 0.25  # more background than this in the ROI (real FV-USM: <= 0.17): too little finger
VEIN_QUALITY_OK = 0.25
