"""The site calibration file: thresholds measured on this site's own sensor and people, stored in the state dir.

Why: a card's thresholds were set on someone else's sensors and fingers. ``biolock calibrate`` scores the stored
captures of every enrolled user against every other user's (and optionally a folder of strangers) and writes
``<state_dir>/site_calibration.json`` with the same calibration block as a card, for one matcher (the model id,
or model + minutiae backend; in small-sensor mode the partial matcher and placement count, plus the ``window``
its strangers were captured at). The device then decides at these thresholds. A file made for another matcher is
refused at start (fail closed: re-run ``biolock calibrate``, or delete the file to use the card's thresholds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.atomicfile import write_json_atomic
from device.calibration.fields import LEVEL_KEYS, Calibration, parse_calibration
from device.errors import ConfigError

FORMAT = "biolock-site-calibration/1"
FILENAME = "site_calibration.json"


class SiteCalibrationError(ConfigError):
    """A site calibration file is damaged, or was made for another matcher."""


@dataclass(frozen=True)
class SiteCalibration:
    path: Path
    matcher: str
    thresholds: dict[str, float]
    calibration: Calibration
    card_supported: tuple[str, ...]  # levels the card supported at thresholds these are not below
    enrolled_users: int
    strangers: int
    created: str
    window: tuple[int, int] | None = None  # (h, w) px at 500 dpi the strangers were captured at (small-sensor mode)

    def threshold(self, level: str) -> float:
        return float(self.thresholds[LEVEL_KEYS[level]])

    def supported(self, level: str) -> bool:
        return level in self.card_supported or self.calibration.supported(level)


def site_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / FILENAME


def parse_site(raw: Any, path: Path) -> SiteCalibration:
    where = f"site calibration {path}"
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise SiteCalibrationError(f"{where}: not a {FORMAT} file")
    thresholds = raw.get("thresholds")
    if not isinstance(thresholds, dict) or set(thresholds) != set(LEVEL_KEYS.values()):
        raise SiteCalibrationError(f"{where}: thresholds must have keys {', '.join(LEVEL_KEYS.values())}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in thresholds.values()):
        raise SiteCalibrationError(f"{where}: thresholds must be numbers")
    matcher = raw.get("matcher")
    if not isinstance(matcher, str) or not matcher:
        raise SiteCalibrationError(f"{where}: lacks the matcher it was made for")
    cal = parse_calibration(raw.get("calibration"), thresholds, where, SiteCalibrationError)
    card_supported = raw.get("card_supported", [])
    if not isinstance(card_supported, list) or not set(card_supported) <= set(LEVEL_KEYS):
        raise SiteCalibrationError(f"{where}: card_supported must list security levels")
    window = raw.get("window")
    if window is not None and (not isinstance(window, list) or len(window) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10_000 for v in window)):
        raise SiteCalibrationError(f"{where}: window must be [height, width] in px at 500 dpi")
    return SiteCalibration(path, matcher, {k: float(v) for k, v in thresholds.items()}, cal, tuple(card_supported),
                           int(raw.get("enrolled_users", 0)), int(raw.get("strangers", 0)), str(raw.get("created", "")),
                           None if window is None else (window[0], window[1]))


def load_site(state_dir: Path | str, matcher: str | None = None) -> SiteCalibration | None:
    """The site calibration in ``state_dir`` (None if there is none); refused when made for another matcher."""
    path = site_path(state_dir)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SiteCalibrationError(f"site calibration {path} cannot be read ({exc}); run biolock calibrate again "
                                   "or delete it") from exc
    site = parse_site(raw, path)
    if matcher is not None and site.matcher != matcher:
        raise SiteCalibrationError(
            f"site calibration {path} was made for {site.matcher}, but {matcher} decides now: run biolock "
            "calibrate again, or delete the file to decide at the card's thresholds")
    return site


def save_site(state_dir: Path | str, data: dict) -> SiteCalibration:
    """Validate and write atomically (temp file + rename); returns the parsed file."""
    path = site_path(state_dir)
    site = parse_site(data, path)
    write_json_atomic(path, data, indent=1)
    return site
