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

Thresholds: ``THRESHOLDS`` (consistent matches per security level) were set from synthetic R503 touches
(``python -m training.r503_scores``, docs/partial-prints.md "Decision thresholds"); no card with a calibration
block exists for this matcher, so every start says the FMR is not calibrated, and the ``secure`` level (whose
claim no measurement here reaches) is refused unless ``matching.allow_unsupported_level = true``. The thresholds
belong to the matcher's scores (``partial_backend.TEMPLATE_ID``): a matcher whose scores changed fails closed at
start until they are measured again. A damaged or foreign stored template scores 0 (it never helps anyone in).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from device.calibration.policy import DecisionInfo, decision_info
from device.config import Config, EnrolConfig
from device.errors import ConfigError
from device.fingerprint.partial_match import Keypoints, PartialTemplateError
from device.fingerprint.placements import SmallSensorEnrolment, decode_placements, verify_score
from device.fingers import FINGERS
from device.imageio import to_grey_u8
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
)

log = logging.getLogger("biolock.small_sensor")

PARTIAL_MODALITY = "fingerprint-partial"  # the store's modality of small-sensor templates
MODEL_ID = f"{TEMPLATE_ID}+placements1"  # matcher scores + the BLPE template of all placements (version 1)
# Consistent matches (``verify_score``) a touch needs, per level; measured for these scores only.
THRESHOLDS_FOR = TEMPLATE_ID
THRESHOLDS = {"convenient": 12.0, "balanced": 14.0, "secure": 18.0}
UNCALIBRATED = ("secure",)  # no measurement here reaches its claim (2e-5): refused unless explicitly allowed
SMALL_MODULES = ("r503",)  # r30x modules whose window is a patch of the finger (192x192)
DEFAULT_DPI = 500
DECODED = 1024  # decoded placement templates kept in memory (about 16 KB each)


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


def threshold(level: str) -> float:
    """The decision threshold of ``level``; ConfigError when the matcher's scores are not those measured."""
    if TEMPLATE_ID != THRESHOLDS_FOR:
        raise ConfigError(f"the partial matcher's scores changed ({TEMPLATE_ID}); the small-sensor thresholds were "
                          f"set for {THRESHOLDS_FOR}: measure them again (python -m training.r503_scores)")
    if level not in THRESHOLDS:
        raise ConfigError(f"security level {level!r} is not one of {', '.join(THRESHOLDS)}")
    return THRESHOLDS[level]


def describe(config: Config) -> DecisionInfo:
    """What decides in small-sensor mode and how strongly: no calibrated card, so the FMR is not claimed."""
    level = config.matching.security
    info = decision_info(f"{MODEL_ID} (small sensor)", "built-in thresholds (device/small_sensor.py)", None, level,
                         threshold(level))
    if level in UNCALIBRATED and not config.matching.allow_unsupported_level:
        raise ConfigError(f"security level {level!r} is not supported in small-sensor mode: its thresholds are not "
                          "calibrated to that FMR (docs/partial-prints.md); set matching.security = 'balanced', or "
                          "matching.allow_unsupported_level = true to run anyway (logged on every start)")
    if level in UNCALIBRATED:
        log.warning("small-sensor mode at %r: the FMR of threshold %.0f is not calibrated to this level, allowed by "
                    "matching.allow_unsupported_level", level, info.threshold)
    return info


class SmallSensorAuthenticator(Authenticator):
    """Enrol, verify and identify with the partial-print matcher alone (no embedding model).

    Same interface as :class:`device.pipeline.Authenticator` (the commands, the daemon and the demo use it as
    one); lockout, audit and the decision's stable reason words are the pipeline's own.
    """

    def __init__(self, store, *, security: str = "balanced", enrol: EnrolConfig | None = None,
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
        self.threshold = self.embedding_threshold = self.agreement_threshold = threshold(security)
        self.decision_info: DecisionInfo | None = None
        self.enrol_config = enrol or EnrolConfig()
        self.placements = int(placements if placements is not None else self.enrol_config.placements)
        SmallSensorEnrolment(placements=self.placements)  # ValueError for a count out of range, before any touch
        self._monotonic = monotonic or (clock if clock is not time.time else time.monotonic)
        self._clock, self._timer = clock, timer
        self._decode = functools.lru_cache(maxsize=DECODED)(decode_placements)

    @classmethod
    def from_config(cls, config: Config, state_dir: Path, *, card_path: Path | None = None,
                    key: bytes | None = None, clock: Callable[[], float] = time.time,
                    check_security: bool = True) -> SmallSensorAuthenticator:
        """Build from the configuration (no model card is read: ``card_path`` is ignored)."""
        if not check_security:
            raise ConfigError("site calibration (biolock calibrate) does not serve small-sensor mode yet")
        from device.store import TemplateStore

        info = describe(config)  # before the store opens: a refused level changes nothing
        store = TemplateStore.open(Path(state_dir), key, lockout_config=config.lockout)
        try:
            auth = cls(store, security=config.matching.security, enrol=config.enrol, dpi=sensor_dpi(config),
                       clock=clock)
        except BaseException:
            store.close()
            raise
        auth.decision_info = info
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
        left = max(self._locked(name), self._locked(IDENTIFY_SUBJECT))
        if left > 0:
            return self._finish("verify", name, name, math.nan, f"locked out: try again in {math.ceil(left)} s",
                                False, False, start, stages)
        kp, problem = self._touch(image, stages)
        if kp is None:
            return self._finish("verify", name, name, math.nan, problem or "poor capture", False, False, start,
                                stages)
        t = self._timer()
        gallery = self.store.byte_templates(PARTIAL_MODALITY, MODEL_ID, user=name)
        stages["store"] = (self._timer() - t) * 1000
        if not gallery.templates:
            reason = "not enrolled"
            if self.store.has_user(name):
                reason = "needs re-enrolment: enrolled without small-sensor placements (enrol again on this sensor)"
            return self._finish("verify", name, name, math.nan, reason, False, True, start, stages)
        score = self._scores(kp, gallery.users, gallery.templates, stages)[name]
        ok = score >= self.threshold
        return self._finish("verify", name, name, score, "match" if ok else "no match", ok, True, start, stages)

    def identify(self, image: np.ndarray) -> Decision:
        """1:N: the enrolled user whose placements the touch matches best, accepted at or above the threshold."""
        start, stages = self._timer(), {}
        left = self._locked(IDENTIFY_SUBJECT)
        if left > 0:
            return self._finish("identify", IDENTIFY_SUBJECT, None, math.nan,
                                f"locked out: try again in {math.ceil(left)} s", False, False, start, stages)
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
        ok = score >= self.threshold
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
        enrolment = SmallSensorEnrolment(placements=need)
        rejected: list[tuple[int, str]] = []
        attempts = 0
        seen: dict[bytes, int] = {}

        def tell(index: int, ok: bool, message: str) -> None:
            if on_capture is not None:
                on_capture(CaptureFeedback(index, ok, message, len(enrolment.stored), need))

        for image in images:
            attempts += 1
            digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()
            if digest in seen:
                why = f"identical to touch {seen[digest]} (the same image twice): place the finger again"
                rejected.append((attempts, why))
                tell(attempts, False, why)
            else:
                seen[digest] = attempts
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
                if self._score(kp, template) >= self.threshold:
                    return user
        return None

    def close(self) -> None:
        self.store.close()
