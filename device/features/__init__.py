"""Handcrafted texture features that run on the device (numpy + OpenCV only, no TensorFlow).

Two extractors, both "adaptive": they measure the image's own ridge / vessel frequency first and place their
filters around it, so one parameter set serves a 500 dpi fingerprint, a downscaled one and a NIR vein crop.

- ``loggabor.extract_loggabor``: a 4 scales x 6 orientations Log-Gabor bank built in the frequency domain;
  pooled magnitude and phase statistics per block.
- ``dog.extract_dog``: Difference of Gaussians (a Laplacian-of-Gaussian approximation) at several scales with a
  sigma derived from the measured period; pooled response statistics per block.

Every extractor first runs ``validation.validate_image``: blank, tiny, saturated or non-finger images raise
``FeatureRejection`` (an ``ImageError``) with a reason, so no NaN ever reaches a matcher.
"""

from __future__ import annotations

from device.features.dog import DogParams, extract_dog
from device.features.loggabor import LogGaborParams, extract_loggabor, loggabor_bank
from device.features.validation import FeatureRejection, validate_image

__all__ = [
    "DogParams",
    "FeatureRejection",
    "LogGaborParams",
    "extract_dog",
    "extract_loggabor",
    "loggabor_bank",
    "validate_image",
]
