"""Calibration: the FMR bound of a count of impostor pairs, the calibration block of every card, site calibration."""

from device.calibration.bounds import clopper_pearson_upper, max_false_matches

__all__ = ["clopper_pearson_upper", "max_false_matches"]
