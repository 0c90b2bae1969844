"""What decides and how strongly: the security level in force, checked against the deciding card's calibration.

Why at start: a level is a promise about false matches, and only the card's calibration block says whether its
threshold keeps it. A level the card does not support stops the start with the strongest level it does support,
unless the configuration says ``matching.allow_unsupported_level = true`` (then every start logs a warning).
A card without a calibration block (made before calibration existed) is used, and every start says its FMR is
not measured. ``DecisionInfo`` is what status, the daemon's start log and ``verify/identify --json`` report
(single modality and fusion mode alike).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from device.calibration.fields import CLAIMS, LEVEL_KEYS
from device.errors import ConfigError

log = logging.getLogger("biolock.security")


@dataclass(frozen=True)
class DecisionInfo:
    """The deciding matcher, its threshold at the configured level and what its card says that threshold does."""

    matcher: str
    card: str
    level: str
    threshold: float
    claim: float
    supported: bool | None  # None: the card carries no calibration
    fmr_upper95: float | None
    measured_fmr: float | None
    impostor_pairs: int | None
    calibrated_on: tuple[str, ...]
    strongest_supported: str | None
    override: bool = False
    site: str | None = None  # a site calibration file in force, if any
    refuted_by: tuple[str, ...] = ()  # held-out real sets whose measurement breaks the claim at this threshold
    held_by: tuple[str, ...] = ()  # held-out real sets on which the claim holds at this threshold

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["calibrated_on"] = list(self.calibrated_on)
        d["refuted_by"] = list(self.refuted_by)
        d["held_by"] = list(self.held_by)
        return d

    def summary(self) -> str:
        """One line for logs and status."""
        head = f"{self.matcher} decides at {self.level} (threshold {self.threshold:.4f}, claim FMR {self.claim:g})"
        if self.supported is None:
            return f"{head}; card {self.card} has no calibration: the FMR is not measured"
        where = f"{self.impostor_pairs:,} impostor pairs of {', '.join(self.calibrated_on)}"
        tail = f"FMR bound {self.fmr_upper95:.2g} (95 %) on {where}"
        if self.site:
            tail += f"; site calibration {self.site}"
        if self.held_by:
            tail += f"; holds on held-out {', '.join(self.held_by)}"
        if self.refuted_by:
            tail += f"; broken on held-out {', '.join(self.refuted_by)}"
        if self.supported:
            return f"{head}; supported: {tail}"
        return f"{head}; NOT supported ({tail}), allowed by matching.allow_unsupported_level"


def decision_info(matcher: str, card_path: str, calibration: Any, level: str, threshold: float,
                  allow_unsupported: bool = False, site: str | None = None,
                  recalibrate: str = "biolock calibrate") -> DecisionInfo:
    """Check ``level`` against ``calibration``; ``ConfigError`` naming the strongest supported level if it fails
    (``recalibrate``: how to show a level when the card supports none)."""
    if level not in LEVEL_KEYS:
        raise ConfigError(f"security level {level!r} is not one of {', '.join(LEVEL_KEYS)}")
    claim = CLAIMS[LEVEL_KEYS[level]]
    if calibration is None:
        info = DecisionInfo(matcher, card_path, level, threshold, claim, None, None, None, None, (), None, False, site)
        log.debug("%s", info.summary())  # status and the daemon's start log say it; CLI output stays clean
        return info
    lv = calibration.levels[level]
    strongest = calibration.strongest_supported()
    info = DecisionInfo(matcher, card_path, level, threshold, claim, lv.supported, lv.fmr_upper95, lv.fmr,
                        lv.impostor_pairs, lv.sets, strongest, not lv.supported, site, tuple(lv.refuted_by()),
                        tuple(n for n, r in lv.held_out.items() if r.get("verdict") == "holds"))
    if not lv.supported and not allow_unsupported:
        more = ("measure it on your own sensor and users" if lv.refuted_by()
                else "calibrate it on more impostors")  # refuted: more of the same pairs would not help
        best = (f"the strongest level it supports is {strongest!r}: set matching.security = {strongest!r}"
                if strongest else f"it supports no level: {more} ({recalibrate})")
        raise ConfigError(
            f"security level {level!r} is not supported by {card_path}: {why_unsupported(lv)}; {best}, or set "
            "matching.allow_unsupported_level = true to run anyway (logged on every start)")
    if not lv.supported:
        log.warning("%s", info.summary())
    return info


def why_unsupported(lv: Any) -> str:
    """The measurement that withdrew a level's promise: a held-out sensor that breaks it, or too few impostors."""
    refuted = lv.refuted_by()
    if refuted:
        r = lv.held_out[refuted[0]]
        return (f"at its threshold {r['false_matches']:,} of {r['impostor_pairs']:,} impostor pairs of the held-out "
                f"set {refuted[0]} match (FMR {r['fmr']:.2g}, bound {r['fmr_upper95']:.2g}), above the claim "
                f"{lv.claim:g}")
    return (f"its 95 % FMR bound {lv.fmr_upper95:.2g} on {lv.impostor_pairs:,} impostor pairs is above the claim "
            f"{lv.claim:g}")


def audit_bucket(score: float | None, fused: bool) -> str | None:
    """The audit log's coarse bucket of the score that decided: cosine tenths, or fused-score halves.

    Why two scales: a fused score is a weighted sum of normalized scores (about -1 to 10), so the cosine bucket
    clamps every fused decision to "0.9-1.0"; fused buckets say so and keep their spread ("fused 2.0-2.5").
    """
    import math

    from device.store.audit import score_bucket

    if score is None or not fused or not math.isfinite(score):
        return score_bucket(score)
    low = math.floor(max(-10.0, min(score, 9.99)) * 2) / 2
    return f"fused {low:.1f}-{low + 0.5:.1f}"


def describe(config: Any, state_dir: Any, card: Any, check: Any = None) -> DecisionInfo:
    """The DecisionInfo of a model card (and the minutiae check fused with it, if any), with the site file applied.

    ``ConfigError`` when the level is not supported (and not allowed) or the site file is for another matcher.
    """
    from device.calibration.site import load_site
    from device.matching.decision import threshold_for

    level = config.matching.security
    if check is not None:
        matcher, card_path = f"{card.model_id} + {check.matcher.template_id}", str(check.card_path)
        calibration, threshold = check.card.calibration, check.threshold(level)
    else:
        matcher, card_path = card.model_id, str(card.path)
        calibration, threshold = card.calibration, threshold_for(card.thresholds, level)
    site = load_site(state_dir, matcher)
    if site is not None:  # a site file only adds support: its thresholds are not below the card's
        looser = site.threshold(level) < threshold  # made with --allow-looser: the card's bound no longer holds
        if level not in site.card_supported and (site.calibration.supported(level) or looser):
            calibration = site.calibration
        threshold = site.threshold(level)
        log.debug("site calibration %s in force: %s threshold %.4f", site.path, level, threshold)
    return decision_info(matcher, card_path, calibration, level, threshold, config.matching.allow_unsupported_level,
                         str(site.path) if site else None)


def describe_fusion(config: Any, card: Any, card_path: Any, model_ids: Any = None) -> DecisionInfo:
    """The DecisionInfo of fusion mode: the fusion card's fused threshold checked against its calibration.

    Why no site file here: ``biolock calibrate`` scores one modality's stored captures, so a site calibration
    never describes the fused score; the fusion card alone says what the configured level is worth.
    ``model_ids`` (modality -> model id) names the models in the matcher; without them the modalities are named.
    ``ConfigError`` when the level is not supported (and not allowed), as for a single modality.
    """
    ids = dict(model_ids or {})
    level = config.matching.security
    matcher = f"fusion {card.name} ({' + '.join(ids.get(m, m) for m in card.matcher_names)})"
    threshold = float(card.thresholds.get(LEVEL_KEYS.get(level, ""), float("nan")))
    return decision_info(matcher, str(card_path), card.calibration, level, threshold,
                         config.matching.allow_unsupported_level,
                         recalibrate="build the fusion card on more identities: biolock train fusion-report")


def configure(auth: Any, config: Any, state_dir: Any) -> DecisionInfo:
    """Apply the site calibration and check the level on a ``device.pipeline.Authenticator``.

    Sets ``auth.decision_info`` and, with a site file, the decision threshold. Raises as ``describe`` does.
    """
    info = describe(config, state_dir, auth.card, auth.minutiae)
    if config.matching.allow_unsupported_level:
        auth.embedding_decides = True  # users without minutiae templates: the override covers them too (logged)
    if info.site:
        auth.threshold = info.threshold
        if auth.minutiae is None:
            auth.embedding_threshold = info.threshold
    auth.decision_info = info
    return info


def status_entry(config: Any, state_dir: Any, card: Any) -> dict[str, Any]:
    """What ``biolock status`` shows about the decision: never raises, a problem is reported as ``problem``."""
    from device.errors import BiolockError
    from device.minutiae.setup import resolve
    from device.small_sensor import is_small_sensor
    from device.small_sensor import status_entry as small_sensor_entry

    if is_small_sensor(config):  # issue 18: the small-sensor card (and this site's file) decides; no model is used
        return small_sensor_entry(config, state_dir)
    try:
        check, _ = resolve(config, card.path, card.model_id)
        info = describe(config, state_dir, card, check)
    except BiolockError as exc:
        return {"problem": str(exc)}
    return {**info.as_dict(), "summary": info.summary()}
