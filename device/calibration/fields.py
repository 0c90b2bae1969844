"""The calibration block every card carries: per security level, what its threshold was measured to do, and where.

Why in the card: a threshold is a promise ("at most 1 false match in 10,000 comparisons") only as good as the
impostor pairs it was measured on. The block says, per level: the threshold, the sets (``synthetic:...`` and/or
named real sets), impostor and genuine pair counts, false matches, measured FMR and FNMR, the one-sided 95 %
Clopper-Pearson upper bound of the FMR, and ``supported`` = the bound reaches the claim. It is validated on load
against the card's own thresholds and recomputed bound, so a hand-edited or inconsistent card is refused::

    "calibration": {"format": "biolock-calibration/1", "method": "...",
      "levels": {"balanced": {"key": "1e-4", "claim": 0.0001, "threshold": 0.97, "sets": ["synthetic:...",
                 "vein/fvusm_roi"], "impostor_pairs": 4400000, "genuine_pairs": 8000, "false_matches": 300,
                 "fmr": 6.8e-05, "fnmr": 0.2, "fmr_upper95": 7.6e-05, "supported": true}, ...},
      "per_set": {"vein/fvusm_roi": {"balanced": {"impostor_pairs": ..., "false_matches": ..., "fmr": ...,
                  "fnmr": ...}, ...}, ...}}

A level may also carry ``held_out``: sets scored at the fitted threshold but never used to fit it (a real sensor
whose terms allow evaluation only, or one kept back to test how the threshold travels). Each gets a verdict
(``held_out_verdict``): ``refutes`` (the measured FMR is above the claim on at least 1/claim pairs, or there are
more false matches than the claim makes likely at 95 % confidence on fewer pairs), ``holds``
(at or below the claim, and its 95 % bound within 3x the claim: issue 16's target on real sets) or
``inconclusive`` (too few pairs either way). A refuted level is not supported, whatever the calibration sets
say: a promise that one real sensor is seen to break is not made.

The same block (plus ``model``) is a site calibration file (``device.calibration.site``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from device.calibration.bounds import CONFIDENCE, binomial_cdf, clopper_pearson_upper
from device.errors import ModelError

FORMAT = "biolock-calibration/1"
LEVEL_KEYS = {"convenient": "1e-3", "balanced": "1e-4", "secure": "2e-5"}  # weakest first
CLAIMS = {"1e-3": 1e-3, "1e-4": 1e-4, "2e-5": 2e-5}
_TOL = 1e-9
VERDICTS = ("holds", "inconclusive", "refutes")
HELD_OUT_SLACK = 3.0  # issue 16's target on real sets: measured FMR <= claim and its 95 % bound <= 3x claim


def held_out_verdict(false_matches: int, impostor_pairs: int, claim: float) -> str:
    """What a held-out set says of a claim at the card's threshold (see the module docstring).

    With fewer than 1/claim impostor pairs one false match already exceeds the claim, so only a count the claim
    makes unlikely (one-sided binomial test at 95 %) refutes it; otherwise the set is ``inconclusive``.
    """
    if impostor_pairs * claim >= 1.0 and false_matches / impostor_pairs > claim:
        return "refutes"
    if false_matches > 0 and binomial_cdf(false_matches - 1, impostor_pairs, claim) > CONFIDENCE:
        return "refutes"  # so many false matches would happen < 5 % of the time if the claim held
    if impostor_pairs * claim < 1.0:
        return "inconclusive"
    if clopper_pearson_upper(false_matches, impostor_pairs) > HELD_OUT_SLACK * claim:
        return "inconclusive"
    return "holds"


@dataclass(frozen=True)
class LevelCalibration:
    key: str
    claim: float
    threshold: float
    sets: tuple[str, ...]
    impostor_pairs: int
    genuine_pairs: int
    false_matches: int
    fmr: float
    fnmr: float
    fmr_upper95: float
    supported: bool
    held_out: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sets"] = list(self.sets)
        if not self.held_out:
            d.pop("held_out")
        else:
            d["held_out"] = {k: dict(v) for k, v in self.held_out.items()}
        return d

    def refuted_by(self) -> list[str]:
        """The held-out sets whose measurement breaks this level's claim."""
        return [name for name, r in self.held_out.items() if r.get("verdict") == "refutes"]


@dataclass(frozen=True)
class Calibration:
    levels: Mapping[str, LevelCalibration]
    method: str = ""
    per_set: Mapping[str, object] = field(default_factory=dict)

    def supported(self, level: str) -> bool:
        return bool(level in self.levels and self.levels[level].supported)

    def strongest_supported(self) -> str | None:
        """The strictest supported level (secure > balanced > convenient), else None."""
        for level in reversed(tuple(LEVEL_KEYS)):
            if self.supported(level):
                return level
        return None

    def to_dict(self) -> dict:
        return {"format": FORMAT, "method": self.method,
                "levels": {k: v.to_dict() for k, v in self.levels.items()}, "per_set": dict(self.per_set)}


def _int(raw: Mapping, key: str, where: str, error: type[Exception]) -> int:
    v = raw.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise error(f"{where}: '{key}' must be a whole number >= 0, got {v!r}")
    return v


def _num(raw: Mapping, key: str, where: str, error: type[Exception]) -> float:
    v = raw.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise error(f"{where}: '{key}' must be a finite number, got {v!r}")
    return float(v)


def _level(level: str, raw: object, thresholds: Mapping[str, float], where: str,
           error: type[Exception]) -> LevelCalibration:
    w = f"{where}: calibration.levels.{level}"
    if not isinstance(raw, Mapping):
        raise error(f"{w} must be an object")
    key = LEVEL_KEYS[level]
    if raw.get("key") != key:
        raise error(f"{w}.key must be {key!r}, got {raw.get('key')!r}")
    claim = _num(raw, "claim", w, error)
    if abs(claim - CLAIMS[key]) > _TOL * CLAIMS[key]:
        raise error(f"{w}.claim must be {CLAIMS[key]}, got {claim}")
    threshold = _num(raw, "threshold", w, error)
    if key in thresholds and abs(threshold - float(thresholds[key])) > 1e-9:
        raise error(f"{w}.threshold {threshold} is not the card's threshold {thresholds[key]} for {key}: "
                    "the card was edited after calibration; calibrate it again")
    sets = raw.get("sets")
    if not isinstance(sets, list) or not sets or not all(isinstance(s, str) and s for s in sets):
        raise error(f"{w}.sets must name the sets it was measured on (a non-empty list of names)")
    n, g, fm = (_int(raw, k, w, error) for k in ("impostor_pairs", "genuine_pairs", "false_matches"))
    if n == 0 or fm > n:
        raise error(f"{w}: needs impostor_pairs > 0 and false_matches <= impostor_pairs, got {fm} of {n}")
    fmr, fnmr, upper = (_num(raw, k, w, error) for k in ("fmr", "fnmr", "fmr_upper95"))
    if abs(fmr - fm / n) > 1e-12:
        raise error(f"{w}.fmr {fmr} is not false_matches / impostor_pairs = {fm / n}")
    if not 0.0 <= fnmr <= 1.0:
        raise error(f"{w}.fnmr must be within [0, 1], got {fnmr}")
    expected = clopper_pearson_upper(fm, n)
    if abs(upper - expected) > 1e-6 * expected:
        raise error(f"{w}.fmr_upper95 {upper} is not the 95 % Clopper-Pearson bound {expected:.6g} of {fm}/{n}")
    held = _held_out(raw.get("held_out", {}), claim, sets, w, error)
    refuted = [name for name, r in held.items() if r["verdict"] == "refutes"]
    want = expected <= claim and not refuted
    supported = raw.get("supported")
    if supported is not want:
        why = f"refuted on held-out {', '.join(refuted)}" if refuted else f"bound {expected:.3g} vs claim {claim:g}"
        raise error(f"{w}.supported must be {want} ({why})")
    return LevelCalibration(key, claim, threshold, tuple(sets), n, g, fm, fmr, fnmr, upper, bool(supported), held)


def _held_out(raw: object, claim: float, fitted_on: list[str], where: str,
              error: type[Exception]) -> dict[str, dict]:
    """Validated held-out results: counts consistent, bound and verdict recomputed, none of the fitting sets."""
    if not isinstance(raw, Mapping):
        raise error(f"{where}.held_out must be an object of set name -> measurement")
    out: dict[str, dict] = {}
    for name, r in raw.items():
        w = f"{where}.held_out.{name}"
        if name in fitted_on:
            raise error(f"{w}: a set the threshold was fitted on is not held out")
        if not isinstance(r, Mapping):
            raise error(f"{w} must be an object")
        n, g, fm = (_int(r, k, w, error) for k in ("impostor_pairs", "genuine_pairs", "false_matches"))
        if n == 0 or fm > n:
            raise error(f"{w}: needs impostor_pairs > 0 and false_matches <= impostor_pairs, got {fm} of {n}")
        fmr, upper = _num(r, "fmr", w, error), _num(r, "fmr_upper95", w, error)
        if abs(fmr - fm / n) > 1e-12:
            raise error(f"{w}.fmr {fmr} is not false_matches / impostor_pairs = {fm / n}")
        expected = clopper_pearson_upper(fm, n)
        if abs(upper - expected) > 1e-6 * expected:
            raise error(f"{w}.fmr_upper95 {upper} is not the 95 % Clopper-Pearson bound {expected:.6g}")
        fnmr = r.get("fnmr")
        if fnmr is not None and (isinstance(fnmr, bool) or not isinstance(fnmr, (int, float))
                                 or not 0.0 <= fnmr <= 1.0):
            raise error(f"{w}.fnmr must be null or within [0, 1], got {fnmr!r}")
        verdict = held_out_verdict(fm, n, claim)
        if r.get("verdict") != verdict:
            raise error(f"{w}.verdict must be {verdict!r} ({fm} of {n:,} impostor pairs, claim {claim:g})")
        out[str(name)] = {"impostor_pairs": n, "genuine_pairs": g, "false_matches": fm, "fmr": fmr,
                          "fnmr": None if fnmr is None else float(fnmr), "fmr_upper95": upper, "verdict": verdict}
    return out


def parse_calibration(raw: object, thresholds: Mapping[str, float], where: str,
                      error: type[Exception] = ModelError) -> Calibration:
    """Validate a calibration block against the card's ``thresholds``; ``error`` names the card and the field."""
    if not isinstance(raw, Mapping):
        raise error(f"{where}: 'calibration' must be an object")
    if raw.get("format") != FORMAT:
        raise error(f"{where}: calibration format {raw.get('format')!r} is not {FORMAT!r}")
    levels = raw.get("levels")
    if not isinstance(levels, Mapping) or set(levels) != set(LEVEL_KEYS):
        got = sorted(levels) if isinstance(levels, Mapping) else levels
        raise error(f"{where}: calibration.levels must have exactly {', '.join(LEVEL_KEYS)}, got {got!r}")
    parsed = {lv: _level(lv, levels[lv], thresholds, where, error) for lv in LEVEL_KEYS}
    ordered = [parsed[lv].threshold for lv in LEVEL_KEYS]
    if ordered != sorted(ordered):
        raise error(f"{where}: calibration thresholds must not fall as the level gets stricter, got {ordered}")
    per_set = raw.get("per_set", {})
    if not isinstance(per_set, Mapping):
        raise error(f"{where}: calibration.per_set must be an object")
    return Calibration(parsed, str(raw.get("method", "")), dict(per_set))
