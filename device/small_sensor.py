"""Small-sensor mode (issue 18): enrol many placements of a finger, decide every touch against all of them.

Why a mode of its own: a 192x192 sensor (R503) or smaller sees a patch of the finger. The embedding network
(trained on whole R307 prints) and minutiae matchers are close to guessing there, and fusing them with the
partial-print matcher was measured to hurt (docs/partial-prints.md), so in this mode the partial matcher
(``device.minutiae.partial_backend``: ORB keypoints on the enhanced ridge image, one rigid motion) decides alone
and no model is loaded. Enrolment collects ``enrol.placements`` (default 10) linked touches with
``SmallSensorEnrolment`` (a touch that overlaps nothing enrolled, repeats a stored place, covers almost nothing
or comes from another finger is refused with what to do; a template never mixes two fingers); the template of
all placements (``BLPE``, <= 16 KB) is sealed in the store as one byte template (schema 4). A touch's score is
``verify_score``: the most consistent matches with any stored placement.

When: ``matching.minutiae = "partial"``, or ``"auto"`` with an R503 (``sensor.module = "r503"``) configured.

Thresholds: the small-sensor card (``models/fingerprint_small_sensor.json``, or ``matching.minutiae_card`` in this
mode) holds the threshold of each security level in consistent matches and its calibration block, fitted and
measured by the rule of every other card (``device.calibration``) on synthetic R503 touches scored exactly as the
device scores them (``python -m training.r503_scores``, docs/partial-prints.md "Decision thresholds"), with real
partial prints held out. A level the card does not support (``secure``: too few impostor pairs to show 2e-5) is
refused at start like any other unsupported level, unless ``matching.allow_unsupported_level = true``. The card
names the matcher's scores (``partial_backend.TEMPLATE_ID``): a matcher whose scores changed, or a missing or
edited card, fails closed at start. A damaged or foreign stored template scores 0 (it never helps anyone in).
The card's ``window`` (px at 500 dpi) is the touch size its real held-out windows were cut at: a sensor smaller
than that is refused at start, a smaller capture is refused as a touch (its claims say nothing about them).

Site calibration (``biolock calibrate --strangers FOLDER``, ``device.calibration.sitecal``): the store holds one
template per finger and no images, so a site measures its own sensor with touches of strangers (people not
enrolled) scored against every enrolled finger. The site file (``<state_dir>/site_calibration.json``) names this
matcher and placement count (``site_matcher``) and the strangers' window. Its thresholds are used as the normal
pipeline uses its site file; a level its own measurement supports is supported at this site, and for touches of
its window: so a sensor smaller than the card's window starts when the site file measured that very window and
supports the level (the decision then rests on the site's stranger pairs). A site file for another matcher,
placement count or window, or a damaged one, is refused at start (fail closed); one whose measurement does not
support the level leaves the card's refusal in place.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from device.calibration.fields import LEVEL_KEYS, Calibration, parse_calibration
from device.calibration.policy import DecisionInfo, decision_info, why_unsupported
from device.calibration.site import SiteCalibration, SiteCalibrationError, load_site
from device.config import Config, EnrolConfig
from device.errors import ConfigError
from device.fingerprint.partial_match import Keypoints, PartialTemplateError
from device.fingerprint.placements import VERSION as PLACEMENTS_VERSION
from device.fingerprint.placements import SmallSensorEnrolment, decode_placements, verify_score
from device.fingers import FINGERS
from device.imageio import to_grey_u8
from device.matching.decision import accept
from device.minutiae.base import MinutiaeError
from device.minutiae.partial_backend import TEMPLATE_ID, PartialMatcher
from device.pipeline import (
    IDENTIFY_SUBJECT,
    Authenticator,
    CaptureFeedback,
    Decision,
    EnrolmentError,
    EnrolResult,
    check_user_name,
    repeated_capture,
)
from device.store.crypto import MAX_BLOB

log = logging.getLogger("biolock.small_sensor")

PARTIAL_MODALITY = "fingerprint-partial"  # the store's modality of small-sensor templates
# the matcher's scores + the version of the BLPE template of all placements: either changing makes enrolled users
# stale (listed for re-enrolment, never matched) and the card's thresholds foreign (refused at start)
MODEL_ID = f"{TEMPLATE_ID}+placements{PLACEMENTS_VERSION}"
CARD_FORMAT = "biolock-small-sensor-card/1"
CARD_NAME = "fingerprint_small_sensor.json"
SMALL_MODULES = ("r503",)  # r30x modules whose window is a patch of the finger (192x192)
DEFAULT_DPI = 500
DECODED = 1024  # decoded placement templates kept in memory (about 16 KB each)


@dataclass(frozen=True)
class SmallSensorCard:
    path: Path
    thresholds: dict[str, float]  # keyed 1e-3 / 1e-4 / 2e-5, in consistent matches
    calibration: Calibration
    placements: int  # per finger, as measured (another count moves the scores: not covered by the calibration)
    budget: int  # template bytes of all placements, as measured
    window: tuple[int, int] | None = None  # (h, w) px at 500 dpi: the smallest touch the held-out check covers

    def threshold(self, level: str) -> float:
        if level not in LEVEL_KEYS:
            raise ConfigError(f"security level {level!r} is not one of {', '.join(LEVEL_KEYS)}")
        return self.thresholds[LEVEL_KEYS[level]]


def small_card_path(config: Config) -> Path:
    """``matching.minutiae_card`` when set, else the shipped ``models/fingerprint_small_sensor.json``."""
    if config.matching.minutiae_card is not None:
        return Path(config.matching.minutiae_card)
    from models import MODELS_DIR

    return MODELS_DIR / CARD_NAME


def load_card(path: Path) -> SmallSensorCard:
    """The small-sensor card at ``path``; ConfigError (fail closed) when missing, foreign, edited or fitted on
    other scores than this matcher's."""
    rebuild = "build it with python -m training.r503_scores --card PATH (docs/partial-prints.md)"
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"small-sensor card {path} cannot be read ({exc.strerror}): {rebuild}") from None
    except ValueError:
        raise ConfigError(f"small-sensor card {path} is not valid JSON: {rebuild}") from None
    if not isinstance(raw, dict) or raw.get("format") != CARD_FORMAT:
        raise ConfigError(f"{path} is not a small-sensor card ({CARD_FORMAT}): {rebuild}")
    if raw.get("matcher") != TEMPLATE_ID or raw.get("model_id") != MODEL_ID:
        raise ConfigError(f"small-sensor card {path} was fitted on {raw.get('model_id')!r}, this matcher scores "
                          f"{MODEL_ID}: the scores changed, {rebuild}")
    levels = raw.get("thresholds")
    if not isinstance(levels, dict) or set(levels) != set(LEVEL_KEYS.values()) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in levels.values()):
        raise ConfigError(f"small-sensor card {path}: thresholds must be positive numbers for "
                          f"{', '.join(LEVEL_KEYS.values())}")
    thresholds = {k: float(v) for k, v in levels.items()}
    calibration = parse_calibration(raw.get("calibration"), thresholds, str(path), ConfigError)
    placements, budget = raw.get("placements"), raw.get("budget")
    if not isinstance(placements, int) or not 1 <= placements <= 20 or not isinstance(budget, int) \
            or not 1024 <= budget <= MAX_BLOB:
        raise ConfigError(f"small-sensor card {path}: placements must be 1-20 and budget 1024-{MAX_BLOB} bytes")
    window = raw.get("window")
    if window is not None and (not isinstance(window, list) or len(window) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 32 <= v <= 2000 for v in window)):
        raise ConfigError(f"small-sensor card {path}: window must be [height, width] in px at 500 dpi (32-2000)")
    return SmallSensorCard(Path(path), thresholds, calibration, placements, budget,
                           None if window is None else (window[0], window[1]))


def sensor_window(config: Config) -> tuple[int, int] | None:
    """An R30x module's image size at 500 dpi (the card's unit); None for other sources (checked per touch)."""
    if config.sensor.type != "r30x":
        return None
    from device.sensors.r30x_packets import MODULES

    spec = MODULES[config.sensor.module]
    return round(spec.height * 500 / spec.dpi), round(spec.width * 500 / spec.dpi)


def smaller_than(window: tuple[int, int], card_window: tuple[int, int]) -> bool:
    """Whether a touch window is smaller than the card's in either direction (1 px of rounding allowed)."""
    return window[0] < card_window[0] - 1 or window[1] < card_window[1] - 1


def is_small_sensor(config: Config) -> bool:
    """Whether ``config`` asks for small-sensor mode (see the module docstring)."""
    if config.device.modality != "fingerprint":
        return False
    mode = config.matching.minutiae
    return mode == "partial" or (mode == "auto" and config.sensor.type == "r30x"
                                 and config.sensor.module in SMALL_MODULES)


def sensor_dpi(config: Config) -> int:
    """The capture resolution: the R30x module's own, else 500 dpi (replay folders and image files)."""
    if config.sensor.type == "r30x":
        from device.sensors.r30x_packets import MODULES

        return int(MODULES[config.sensor.module].dpi)
    return DEFAULT_DPI


def site_matcher(placements: int) -> str:
    """What a small-sensor site calibration file is made for: this matcher's scores against stitched templates
    of ``placements`` placements (another count moves the scores, so its file is refused like another matcher's)."""
    return f"{MODEL_ID} x{int(placements)} placements (small sensor)"


def _size(window: tuple[int, int]) -> str:
    return f"{window[0]}x{window[1]}"


def same_window(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two touch windows are one size (1 px of rounding allowed either way)."""
    return not smaller_than(a, b) and not smaller_than(b, a)


@dataclass(frozen=True)
class SmallSensorDecisionInfo(DecisionInfo):
    """``DecisionInfo`` plus a note on what the level rests on (a site's own strangers, for a smaller sensor)."""

    note: str | None = None

    def summary(self) -> str:
        return super().summary() + (f"; {self.note}" if self.note else "")


@dataclass(frozen=True)
class SmallSensorDecision:
    """What ``resolve_decision`` found: the DecisionInfo, the site file in force (if any) and the touch windows.

    ``touch_windows``: a touch smaller than every one of them is refused (empty: none is refused for its size).
    """

    info: SmallSensorDecisionInfo
    site: SiteCalibration | None
    touch_windows: tuple[tuple[int, int], ...]


def describe(config: Config, card: SmallSensorCard | None = None,
             state_dir: Path | str | None = None) -> DecisionInfo:
    """What decides in small-sensor mode and how strongly; ConfigError for a level neither the card nor the site
    calibration in ``state_dir`` supports (unless ``matching.allow_unsupported_level``). Without ``state_dir`` no
    site file is considered."""
    return resolve_decision(config, card, state_dir).info


def resolve_decision(config: Config, card: SmallSensorCard | None = None,
                     state_dir: Path | str | None = None) -> SmallSensorDecision:
    """The card's (or the site file's) threshold and calibration for the configured level, checked as every card
    is (``decision_info``), and the touch sizes they cover. Why the window rule: a claim measured on touches of
    one size says nothing about smaller ones, whether the card's real windows or the site's strangers measured it.
    """
    card = card or load_card(small_card_path(config))
    level = config.matching.security
    wanted = config.enrol.placements
    if wanted != card.placements:  # the max over more (or fewer, richer) placements is another score
        if not config.matching.allow_unsupported_level:
            raise ConfigError(f"enrol.placements = {wanted} but the small-sensor card {card.path} was measured with "
                              f"{card.placements} placements per finger: its thresholds say nothing about {wanted}; "
                              f"set enrol.placements = {card.placements}, build a card for {wanted} (python -m "
                              "training.r503_scores --placements N --card PATH, then matching.minutiae_card), or set "
                              "matching.allow_unsupported_level = true to run anyway (logged on every start)")
        log.warning("small-sensor mode with %d placements per finger: the card %s was measured with %d; its FMR "
                    "bounds do not apply (allowed by matching.allow_unsupported_level)", wanted, card.path,
                    card.placements)
    window = sensor_window(config)
    small = card.window is not None and window is not None and smaller_than(window, card.window)
    what = "" if not small else (
        f"the {config.sensor.module} sees {_size(window)} px at 500 dpi, less than the {_size(card.window)} px "
        f"window the small-sensor card {card.path} was checked on with real prints")
    site = None if state_dir is None else load_site(state_dir, site_matcher(config.enrol.placements))
    calibration, threshold = card.calibration, card.threshold(level)
    touch_windows: tuple[tuple[int, int], ...] = () if card.window is None else (card.window,)
    note = None
    if site is not None:
        if site.window is None or (window is not None and not same_window(window, site.window)):
            measured = "records no sensor window" if site.window is None else (
                f"was measured on strangers' touches of {_size(site.window)} px at 500 dpi, but the "
                f"{config.sensor.module} sees {_size(window)}")
            raise SiteCalibrationError(
                (f"{what}; and the " if small else "the ") + f"site calibration {site.path} {measured}: measure "
                "this sensor with biolock calibrate --strangers FOLDER --replace (touches of people not enrolled, "
                "captured on it), or delete the file")
        own = site.calibration.supported(level)
        card_covers_site = card.window is None or not smaller_than(site.window, card.window)
        threshold = site.threshold(level)
        looser = threshold < card.threshold(level)  # made with --allow-looser: the card's bound no longer holds
        if (own or looser) and (not card_covers_site or level not in site.card_supported):
            calibration = site.calibration
        if own and not card_covers_site:  # touches of the site's window are covered by its own measurement
            touch_windows += (site.window,)
            pairs = site.calibration.levels[level].impostor_pairs
            note = (f"the card does not cover touches of {_size(site.window)} px at 500 dpi: '{level}' rests on "
                    f"this site's {pairs:,} stranger pairs ({site.strangers} strangers, {site.path})")
            if small:
                log.info("%s: %s", what, note)
    if small and (site is None or not site.calibration.supported(level)):
        why = ("no site calibration measured it" if site is None else
               f"the site calibration {site.path} does not support '{level}' "
               f"({why_unsupported(site.calibration.levels[level])})")
        if not config.matching.allow_unsupported_level:
            raise ConfigError(f"{what}: its FMR claims do not cover this sensor and {why}; measure this sensor "
                              "with biolock calibrate --strangers FOLDER (touches of people not enrolled, captured "
                              "on it: a level its pairs support is then supported here), build a card checked on "
                              "windows of this size (docs/partial-prints.md), or set "
                              "matching.allow_unsupported_level = true to run anyway (logged on every start)")
        log.warning("%s; %s (allowed by matching.allow_unsupported_level)", what, why)
    info = decision_info(f"{MODEL_ID} (small sensor)", str(card.path), calibration, level, threshold,
                         config.matching.allow_unsupported_level, str(site.path) if site else None,
                         recalibrate="measure this site with biolock calibrate --strangers FOLDER, or python -m "
                                     "training.r503_scores with more strangers")
    info = SmallSensorDecisionInfo(**{f.name: getattr(info, f.name) for f in fields(info)}, note=note)
    return SmallSensorDecision(info, site, touch_windows)


def status_entry(config: Config, state_dir: Path | str) -> dict[str, Any]:
    """What ``biolock status`` shows about the small-sensor decision, the site file applied: never raises."""
    from device.errors import BiolockError

    try:
        info = describe(config, None, state_dir)
    except BiolockError as exc:
        return {"problem": str(exc), "small_sensor": True}
    return {**info.as_dict(), "summary": info.summary(), "small_sensor": True}


class SmallSensorAuthenticator(Authenticator):
    """Enrol, verify and identify with the partial-print matcher alone (no embedding model).

    Same interface as :class:`device.pipeline.Authenticator` (the commands, the daemon and the demo use it as
    one); lockout, audit and the decision's stable reason words are the pipeline's own.
    """

    def __init__(self, store, card: SmallSensorCard, *, security: str = "balanced", enrol: EnrolConfig | None = None,
                 placements: int | None = None, dpi: int = DEFAULT_DPI, clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.perf_counter, monotonic: Callable[[], float] | None = None) -> None:
        self.embedder = None
        self.card = None
        self.store = store
        self.modality = "fingerprint"
        self.security = security
        self.minutiae = None
        self.matcher = PartialMatcher(dpi)
        self.dpi = int(dpi)
        self.small_card = card
        self.threshold = self.embedding_threshold = self.agreement_threshold = card.threshold(security)
        self.decision_info: DecisionInfo | None = None
        self.enrol_config = enrol or EnrolConfig()
        self.placements = int(placements if placements is not None else self.enrol_config.placements)
        SmallSensorEnrolment(placements=self.placements)  # ValueError for a count out of range, before any touch
        self.budget = card.budget  # template bytes of all placements: what the card was measured with
        self._monotonic = monotonic or (clock if clock is not time.time else time.monotonic)
        self._clock, self._timer = clock, timer
        self._decode = functools.lru_cache(maxsize=DECODED)(decode_placements)
        # a touch smaller than every window here is refused (the card's; from_config adds a site's it supports)
        self.touch_windows: tuple[tuple[int, int], ...] = () if card.window is None else (card.window,)

    @classmethod
    def from_config(cls, config: Config, state_dir: Path, *, card_path: Path | None = None,
                    key: bytes | None = None, clock: Callable[[], float] = time.time,
                    check_security: bool = True) -> SmallSensorAuthenticator:
        """Build from the configuration (no model card is read: ``card_path`` is ignored).

        ``check_security`` False (``biolock calibrate`` only): no level is checked, no site file applied and no
        touch is refused for its size, since measuring this sensor's touches is the point; nothing is decided."""
        from device.store import TemplateStore

        card = load_card(small_card_path(config))
        decision = None
        if check_security:  # before the store opens: a refused level changes nothing
            decision = resolve_decision(config, card, state_dir)
        store = TemplateStore.open(Path(state_dir), key, lockout_config=config.lockout)
        try:
            auth = cls(store, card, security=config.matching.security, enrol=config.enrol, dpi=sensor_dpi(config),
                       clock=clock)
        except BaseException:
            store.close()
            raise
        if decision is None:
            auth.touch_windows = ()
            return auth
        auth.decision_info = decision.info
        auth.touch_windows = decision.touch_windows
        auth.threshold = auth.embedding_threshold = auth.agreement_threshold = decision.info.threshold
        return auth

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def matcher_name(self) -> str:
        return f"{TEMPLATE_ID} against {self.placements} placements per finger (small sensor)"

    def _audit_bucket(self, score: float, threshold: float | None) -> str | None:
        """Consistent matches in buckets of 5 (the audit log never holds the score itself)."""
        if math.isnan(score):
            return None
        low = int(min(score, 99) // 5 * 5)
        return f"matches {low}-{low + 5}"

    # --- a touch --------------------------------------------------------------------------------------------

    def _touch(self, image: np.ndarray, stages: dict[str, float]) -> tuple[Keypoints | None, str | None]:
        """(keypoints, None) or (None, what to do): covers almost nothing, a smudge, blank, saturated, ..."""
        window = self._window(image)
        if self.touch_windows and all(smaller_than(window, w) for w in self.touch_windows):
            h, w = min(self.touch_windows)
            return None, (f"the capture is {window[0]}x{window[1]} px at 500 dpi, smaller than the {h}x{w} px "
                          "window this matcher's thresholds were checked on: use a larger sensor or another card")
        t = self._timer()
        try:
            return self.matcher.keypoints(to_grey_u8(np.asarray(image))), None
        except MinutiaeError as exc:
            return None, str(exc)
        finally:
            stages["extract"] = (self._timer() - t) * 1000

    def _window(self, image: np.ndarray) -> tuple[int, int]:
        """A capture's size at 500 dpi (the frame of its keypoints)."""
        h, w = np.asarray(image).shape[:2]
        return round(h * 500 / self.dpi), round(w * 500 / self.dpi)

    def _score(self, kp: Keypoints, template: bytes) -> float:
        """The touch against one finger's placements; a damaged or foreign template scores 0."""
        try:
            return verify_score(self._decode(bytes(template)), kp)
        except PartialTemplateError as exc:
            log.warning("a stored small-sensor template does not decode (%s): it scores 0", exc)
            return 0.0

    def _scores(self, kp: Keypoints, users: Iterable[str], templates: Iterable[bytes],
                stages: dict[str, float]) -> dict[str, float]:
        """Each user's best score over their fingers."""
        t = self._timer()
        best: dict[str, float] = {}
        for user, template in zip(users, templates, strict=True):
            best[user] = max(best.get(user, 0.0), self._score(kp, template))
        stages["match"] = stages.get("match", 0.0) + (self._timer() - t) * 1000
        return best

    # --- decisions ------------------------------------------------------------------------------------------

    def verify(self, name: str, image: np.ndarray) -> Decision:
        """1:1: does the touch match any placement of any of ``name``'s fingers?"""
        check_user_name(name)
        start, stages = self._timer(), {}
        refused = self._locked_out("verify", name, start, stages)
        if refused is not None:
            return refused
        kp, problem = self._touch(image, stages)
        if kp is None:
            return self._finish("verify", name, name, math.nan, problem or "poor capture", False, False, start,
                                stages)
        t = self._timer()
        gallery = self.store.byte_templates(PARTIAL_MODALITY, MODEL_ID, user=name)
        stages["store"] = (self._timer() - t) * 1000
        if not gallery.templates:
            reason = "not enrolled"
            if self.stale_users(only=name):
                reason = "needs re-enrolment: enrolled with another small-sensor matcher or template version"
            elif self.store.has_user(name):
                reason = "needs re-enrolment: enrolled without small-sensor placements (enrol again on this sensor)"
            return self._finish("verify", name, name, math.nan, reason, False, True, start, stages)
        score = self._scores(kp, gallery.users, gallery.templates, stages)[name]
        ok = accept(score, self.threshold)
        return self._finish("verify", name, name, score, "match" if ok else "no match", ok, True, start, stages)

    def identify(self, image: np.ndarray) -> Decision:
        """1:N: the enrolled user whose placements the touch matches best, accepted at or above the threshold."""
        start, stages = self._timer(), {}
        refused = self._locked_out("identify", None, start, stages)
        if refused is not None:
            return refused
        kp, problem = self._touch(image, stages)
        if kp is None:
            return self._finish("identify", IDENTIFY_SUBJECT, None, math.nan, problem or "poor capture", False,
                                False, start, stages)
        t = self._timer()
        gallery = self.store.byte_templates(PARTIAL_MODALITY, MODEL_ID)
        stages["store"] = (self._timer() - t) * 1000
        if not gallery.templates:
            return self._finish("identify", IDENTIFY_SUBJECT, None, math.nan, "nobody enrolled", False, False,
                                start, stages)
        scores = self._scores(kp, gallery.users, gallery.templates, stages)
        user, score = max(scores.items(), key=lambda kv: (kv[1], kv[0]))
        ok = accept(score, self.threshold)
        return self._identified(user, score, "match" if ok else "no match", ok, start, stages)

    def stale_users(self, only: str | None = None) -> list[str]:
        return list(self.store.stale_users({PARTIAL_MODALITY: MODEL_ID}, only))

    # --- enrolment ------------------------------------------------------------------------------------------

    def enroll(self, name: str, finger: str, images: Iterable[np.ndarray],
               on_capture: Callable[[CaptureFeedback], None] | None = None,
               allow_duplicate: bool = False) -> EnrolResult:
        """Take touches until ``placements`` linked placements are stored; refuse duplicates; store all or nothing.

        Each touch is told what it did (``CaptureFeedback.message``: "placement 4 stored: move your finger up a
        little (covered 70 % of the finger)", or why it was refused); ``good``/``needed`` count placements."""
        check_user_name(name)
        if finger not in FINGERS:
            raise EnrolmentError(f"unknown finger {finger!r}; choose one of: {', '.join(FINGERS)}")
        need = self.placements
        limit = max(self.enrol_config.max_attempts, 3 * need)
        enrolment = SmallSensorEnrolment(placements=need, budget=self.budget)
        rejected: list[tuple[int, str]] = []
        attempts = 0
        seen: dict[bytes, int] = {}

        def tell(index: int, ok: bool, message: str) -> None:
            if on_capture is not None:
                on_capture(CaptureFeedback(index, ok, message, len(enrolment.stored), need))

        for image in images:
            attempts += 1
            why = repeated_capture(seen, image, attempts)
            if why is not None:
                rejected.append((attempts, why))
                tell(attempts, False, why)
            else:
                kp, problem = self._touch(image, {})
                if kp is None:
                    rejected.append((attempts, problem or "poor capture"))
                    tell(attempts, False, problem or "poor capture")
                else:
                    fb = enrolment.add(kp, self._window(image))
                    if not fb.accepted:
                        rejected.append((attempts, fb.message))
                    tell(attempts, fb.accepted, "done: " + fb.message if fb.done else fb.message)
            if enrolment.done or attempts >= limit:
                break
        if not enrolment.done:
            reason = (f"only {len(enrolment.stored)} of {need} placements linked after {attempts} touches: touch "
                      "the same finger, shifting it a little each time")
            self.store.audit("enrol", user=name, decision="failed", detail=reason[:200])
            return EnrolResult(False, name, finger, 0, attempts, rejected, reason)
        template = enrolment.template()
        other = self._duplicate_of(name, enrolment.stored)
        if other is not None and not allow_duplicate:
            reason = (f"this finger is already enrolled to user {other!r} (it matches at the {self.security} "
                      "threshold); if they are different people, enrol again with --allow-duplicate")
            self.store.audit("enrol", user=name, decision="duplicate", detail=reason[:200])
            return EnrolResult(False, name, finger, 0, attempts, rejected, reason, duplicate_of=other)
        if other is not None:
            self.store.audit("enrol", user=name, decision="duplicate-allowed",
                             detail=f"matches user {other!r}; enrolled anyway (--allow-duplicate)"[:200])
        self.store.enroll_bytes(name, finger, PARTIAL_MODALITY, MODEL_ID, [template])  # audits itself
        log.info("enrolled %s (%s): %d placements, coverage %.0f %%, template %d bytes", name, finger,
                 len(enrolment.stored), 100 * enrolment.coverage(), len(template))
        return EnrolResult(True, name, finger, len(enrolment.stored), attempts, rejected)

    def _duplicate_of(self, name: str, placements: list[Keypoints]) -> str | None:
        """Another user any placement matches at the decision threshold, else None."""
        gallery = self.store.byte_templates(PARTIAL_MODALITY, MODEL_ID)
        keep = [(u, t) for u, t in zip(gallery.users, gallery.templates, strict=True) if u != name]
        for kp in placements:
            for user, template in keep:
                if accept(self._score(kp, template), self.threshold):
                    return user
        return None

    def close(self) -> None:
        self.store.close()
