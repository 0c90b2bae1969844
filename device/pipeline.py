"""The authentication pipeline (contract 9): image -> preprocess -> quality gate -> embed -> match -> decide -> audit.

Why it reads like this: every stage is one named call, timed into ``stages_ms``, so the bench and the audit log
can say where the time goes. Every doubt fails closed: a locked-out subject, a poor capture, a user with no
templates for the current model, a model that produces NaN -- none of them accepts. Lockout counters and the
audit trail live in the template store, so they survive restarts and are shared by the CLI and the daemon.

Lockout subjects: ``verify`` counts failures per claimed user; ``identify`` counts them under one shared subject
(``IDENTIFY_SUBJECT``) with a short, capped back-off, since an unknown finger claims no one; a user locked out by
verify failures is refused by identify too, and an identify success clears that user's counter. Poor-quality
captures are not failures (the person is told what to fix); non-matching comparisons are.

``Decision.reason`` starts with one of these stable words (the daemon and UIs key on them): ``match``,
``no match``, ``locked out``, ``not enrolled``, ``needs re-enrolment``, ``no <modality> templates``,
``nobody enrolled``, or a quality reason from ``device.quality`` (``too dark``, ``no finger found``, ...).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device.calibration.policy import DecisionInfo, audit_bucket
from device.config import Config, EnrolConfig
from device.enrolgroup import grow_group
from device.errors import BiolockError, ConfigError, ModelError
from device.fingerprint import gate as quality_gate
from device.fingers import FINGERS
from device.imageio import to_grey_u8
from device.inference import Embedder, build_embedder
from device.matching import accept, agreeing_subset, connected_group, identify, threshold_for, verify_score
from device.minutiae import MinutiaeCheck, MinutiaeError, pack_template
from device.minutiae.pairing import Templates, user_templates
from device.preprocess import preprocess

IDENTIFY_SUBJECT = "*identify*"
# Identify with minutiae in a large gallery: the SHORTLIST users with the best cosines, each compared through its
# best-cosine capture only (40 comparisons, as many as 8 users x 5 captures). The embedding ranks real fingers
# poorly: 198 real fingers enrolled with 5 captures (FVC + PolyU, 890 probes): 8 users x 5 captures identified
# 65.5 %, 40 users x 1 capture 88.8 %, no wrong user accepted either way (docs/fingerprint.md, "Identification").
SHORTLIST = 40
SHORTLIST_CAPTURES = 1
# A gallery of at most this many captures is compared in full (every capture of every user: ~45 ms at 0.28 ms each).
SCORE_ALL_CAPTURES = 160
DUPLICATE_CAPTURES = 2  # enrolment: a duplicate finger matches another user with at least this many captures
DISAGREE = "captures disagree: place the same finger again"
RESERVED_NAMES = ("unknown", "-")  # what `verify`/`audit tail` print for "no one"; a user of that name would lie
NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def shortlist_plan(rows: list[str]) -> tuple[int, int | None]:
    """(users, captures per user) a probe is compared with by minutiae, given the gallery's row owners: every
    capture of every user in a small gallery (``SCORE_ALL_CAPTURES``), else the best-cosine capture of each of the
    ``SHORTLIST`` users with the best cosines. None: all captures."""
    if len(rows) <= SCORE_ALL_CAPTURES:
        return max(len(set(rows)), 1), None
    return SHORTLIST, SHORTLIST_CAPTURES


def repeated_capture(seen: dict[bytes, int], image: np.ndarray, attempt: int) -> str | None:
    """Why ``image`` is refused when it is byte for byte an earlier attempt's (a sensor never gives the same bytes
    twice: a replayed image), else None; ``seen`` (digest -> attempt) remembers it."""
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()
    if digest in seen:
        return f"identical to capture {seen[digest]} (the same image twice): place the finger again"
    seen[digest] = attempt
    return None


class RequestError(BiolockError):
    """A request that cannot be carried out as asked (a bad user name or finger)."""


class EnrolmentError(RequestError):
    """An enrolment that cannot be carried out as asked, or that failed (the CLI reports it with exit 2)."""


def check_user_name(name: object) -> str:
    """1-64 printable characters, no surrounding spaces, not starting with '*' (reserved for lockout subjects)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or name != name.strip() or name.startswith("*"):
        raise RequestError(f"invalid user name {name!r}: 1-64 printable characters, no surrounding spaces, "
                           "not starting with '*'")
    if name.lower() in RESERVED_NAMES or "/" in name:
        raise RequestError(f"invalid user name {name!r}: 'unknown' and '-' are reserved and '/' is not allowed")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from the command line arrive as surrogate escapes
        raise RequestError(f"invalid user name {name!r}: not valid UTF-8 text") from None
    return name


_REVEALS_ENROLMENT = ("not enrolled", "needs re-enrolment", "nobody enrolled")


def public_reason(reason: str, modality_words: Iterable[str] = ("fingerprint", "vein", "minutiae")) -> str:
    """What a caller without admin rights may learn: ``no match`` for every reason that tells who is enrolled.

    Why: "not enrolled" vs "no match" tells a stranger which names are enrolled (issue 17, item 8). Lockout and
    quality reasons are kept (they tell a person what to do and reveal nothing about others)."""
    head = reason.split(";")[0].strip()
    if head.startswith(_REVEALS_ENROLMENT) or any(head.startswith(f"no {m} templates") for m in modality_words) \
            or head.startswith("no match"):
        return "no match" + reason[len(head):] if ";" in reason else "no match"
    return reason


@dataclass(frozen=True)
class Decision:
    """One verify/identify outcome. ``score`` is NaN when no comparison was made (locked out, poor capture)."""

    accepted: bool
    user: str | None
    score: float
    threshold: float
    reason: str
    latency_ms: float
    stages_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = None if math.isnan(self.score) else round(self.score, 4)
        d["latency_ms"] = round(self.latency_ms, 3)
        d["stages_ms"] = {k: round(v, 3) for k, v in self.stages_ms.items()}
        return d


@dataclass(frozen=True)
class CaptureFeedback:
    """Told after every enrolment capture, so a UI can say "lift and place again" or what to fix."""

    index: int
    ok: bool
    message: str
    good: int
    needed: int


@dataclass(frozen=True)
class EnrolResult:
    ok: bool
    user: str
    finger: str
    stored: int
    attempts: int
    rejected: list[tuple[int, str]]
    reason: str | None = None
    duplicate_of: str | None = None


class Authenticator:
    """Enrol, verify and identify against the template store with one embedder and one decision threshold."""

    def __init__(self, embedder: Embedder, store: Any, *, modality: str, security: str = "balanced",
                 enrol: EnrolConfig | None = None, clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.perf_counter, minutiae: MinutiaeCheck | None = None,
                 monotonic: Callable[[], float] | None = None) -> None:
        card = embedder.card
        if card.modality != modality:
            raise ModelError(f"{card.path}: a {card.modality} model cannot serve modality {modality!r}")
        if minutiae is not None and modality != minutiae.names[0]:
            raise ConfigError(f"a {minutiae.names[0]} second matcher cannot serve modality {modality}")
        self.embedder, self.store, self.modality = embedder, store, modality
        self.card = card
        self.security = security
        self.minutiae = minutiae
        # With minutiae, decisions are on the fused score (the minutiae card's thresholds); users enrolled without
        # minutiae templates are decided on the embedding alone at the model card's threshold only where that card
        # supports the level (or carries no calibration; configure() also allows it under
        # matching.allow_unsupported_level), else they are asked to re-enrol (fail closed).
        self.embedding_threshold = threshold_for(card.thresholds, security)
        cal = getattr(card, "calibration", None)
        self.embedding_decides = cal is None or cal.supported(security)
        self.threshold = minutiae.threshold(security) if minutiae else self.embedding_threshold
        self.agreement_threshold = (minutiae.threshold("convenient") if minutiae
                                    else threshold_for(card.thresholds, "convenient"))
        self.decision_info: DecisionInfo | None = None  # set by from_config (device.calibration.policy.configure)
        self.enrol_config = enrol or EnrolConfig()
        # lockout durations run on a monotonic clock (wall-clock jumps change nothing); a test's fake clock serves both
        self._monotonic = monotonic or (clock if clock is not time.time else time.monotonic)
        self._clock, self._timer = clock, timer

    @classmethod
    def from_config(cls, config: Config, state_dir: Path, *, card_path: Path | None = None,
                    key: bytes | None = None, clock: Callable[[], float] = time.time,
                    check_security: bool = True) -> Authenticator:
        """Build from the validated configuration: the configured backend and card, the store in ``state_dir``.

        ``check_security``: apply the site calibration and refuse a level the deciding card does not support
        (``device.calibration.policy``); only ``biolock calibrate`` opens without it. A small sensor (R503, or
        ``matching.minutiae = "partial"``) gets the small-sensor authenticator (``device.small_sensor``)."""
        from device.small_sensor import SmallSensorAuthenticator, is_small_sensor

        if is_small_sensor(config) and cls is Authenticator:
            return SmallSensorAuthenticator.from_config(config, state_dir, card_path=card_path, key=key, clock=clock,
                                                        check_security=check_security)
        modality = config.device.modality
        if modality not in ("fingerprint", "vein"):
            raise ConfigError(f"device.modality = {modality!r} is served by the fusion pipeline, not Authenticator")
        from device.inference.threads import limit_runtime_threads
        from device.store import TemplateStore

        limit_runtime_threads(config.inference.num_threads)
        embedder = build_embedder(config.inference, card_path, modality=modality, state_dir=state_dir)
        try:
            store = TemplateStore.open(Path(state_dir), key, lockout_config=config.lockout)
        except BaseException:
            embedder.close()
            raise
        try:
            from device.minutiae.setup import minutiae_from_config

            auth = cls(embedder, store, modality=modality, security=config.matching.security, enrol=config.enrol,
                       clock=clock, minutiae=minutiae_from_config(config, embedder))
            if check_security:
                from device.calibration.policy import configure

                configure(auth, config, Path(state_dir))
            return auth
        except BaseException:
            embedder.close()
            store.close()
            raise

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def matcher_name(self) -> str:
        """What decides: the embedding model alone, or it fused with a minutiae backend."""
        if self.minutiae is None:
            return self.model_id
        return f"{self.model_id} + {self.minutiae.matcher.template_id}"

    # --- stages ---------------------------------------------------------------------------------------------

    def _probe(self, image: np.ndarray, stages: dict[str, float]) -> tuple[np.ndarray | None, str | None]:
        """Preprocess, quality gate and embed one capture: (embedding, None) or (None, the quality reason)."""
        t = self._timer()
        problem = self.minutiae.capture_problem(image) if self.minutiae is not None else None
        if problem is not None:  # vein: no finger region (no finger, two fingers, at the edge, ...): say why
            stages["preprocess"] = (self._timer() - t) * 1000
            return None, problem
        model_input = self.minutiae.model_input(image) if self.minutiae is not None else image  # vein: the region
        prep = preprocess(model_input, self.modality, self.card.input_size, self.card.preprocessing)
        stages["preprocess"] = (self._timer() - t) * 1000
        if prep.preprocessing_id != self.card.preprocessing:
            raise ModelError(f"{self.card.path}: model expects {self.card.preprocessing}, "
                             f"preprocessing gave {prep.preprocessing_id}")
        if not prep.quality.ok:
            return None, prep.quality.reason or "poor quality capture"
        t = self._timer()
        vector = self.embedder.embed(prep.image)
        stages["embed"] = (self._timer() - t) * 1000
        return vector, None

    def _probe_audited(self, event: str, user: str | None, image: np.ndarray,
                       stages: dict[str, float]) -> tuple[np.ndarray | None, str | None]:
        """``_probe``, auditing a model fault (NaN, broken model) before it propagates: fail closed, leave a trace."""
        try:
            return self._probe(image, stages)
        except ModelError as exc:
            self.store.audit(event, user=user, decision="error", detail=f"model fault: {exc}"[:200])
            raise

    def _minutiae_of(self, image: np.ndarray, stages: dict[str, float],
                     enrol: bool = False) -> tuple[bytes | None, str | None]:
        """The capture's minutiae template when minutiae are on: (template, None) or (None, why there is none).

        Our own extractor's captures pass the quality gate first, stricter for ``enrol`` (device.fingerprint.gate)."""
        if self.minutiae is None:
            return None, None
        t = self._timer()
        try:
            template = quality_gate.template(self.minutiae.matcher, to_grey_u8(np.asarray(image)), enrol)
            pack_template(template)  # too long for the store is a poor capture too
        except MinutiaeError as exc:
            return None, str(exc)
        finally:
            stages["minutiae"] = (self._timer() - t) * 1000
        return template, None

    def _galleries(self, stages: dict[str, float]) -> Templates:
        t = self._timer()
        emb = self.store.gallery(self.modality, self.model_id)
        mnt = (self.store.gallery(self.minutiae.store_modality, self.minutiae.matcher.template_id) if self.minutiae
               else None)
        stages["store"] = (self._timer() - t) * 1000
        return Templates(emb, mnt)

    def _user_score(self, user: str, vector: np.ndarray, probe: bytes | None, galleries: Templates,
                    stages: dict[str, float], captures: int | None = None) -> tuple[float, float]:
        """(score, threshold) of one user: fused with minutiae when both sides have them, else the embedding's.

        ``captures``: compare only this many of the user's captures by minutiae, the best cosines first."""
        t = self._timer()
        cosines, minutiae = user_templates(galleries, user, vector, captures)
        if self.minutiae is None or probe is None or minutiae is None:
            threshold = self.embedding_threshold
            if self.minutiae is not None and not self.embedding_decides:
                threshold = math.inf  # fail closed: the embedding alone supports no claim at this level
            result = (float(cosines.max()) if cosines.size else -1.0, threshold)
        else:
            result = (self.minutiae.best(cosines, probe, minutiae, self.threshold), self.threshold)
        stages["match"] = stages.get("match", 0.0) + (self._timer() - t) * 1000
        return result

    def _finish(self, event: str, subject: str, user: str | None, score: float, reason: str, accepted: bool,
                counted: bool, start: float, stages: dict[str, float], threshold: float | None = None) -> Decision:
        """Decide, update lockout counters, audit; the Decision carries the time up to the decision."""
        now, t = self._monotonic(), self._timer()
        if counted and accepted:
            self.store.record_success(subject)
            if event == "identify" and user is not None:  # a success clears that user's own counter too
                self.store.record_success(user)
        elif counted:
            locked = self.store.record_failure(subject, now)
            if locked > 0:
                reason = f"{reason}; too many failures, locked for {locked:.0f} s"
        stages["lockout"] = (self._timer() - t) * 1000
        latency = (self._timer() - start) * 1000
        decision = Decision(accepted, user if accepted or event == "verify" else None, score,
                            self.threshold if threshold is None else threshold, reason, latency, stages)
        self.store.audit(event, user=user if event == "verify" or accepted else None,
                         decision="accept" if accepted else "reject", score_bucket=self._audit_bucket(score, threshold),
                         latency_ms=round(latency, 3), detail=reason[:200])
        return decision

    def _audit_bucket(self, score: float, threshold: float | None) -> str | None:
        """The audit log's coarse bucket of the deciding score (cosine tenths, or fused-score halves)."""
        return audit_bucket(None if math.isnan(score) else score, self.minutiae is not None and (
            threshold is None or threshold == self.threshold))

    def _locked(self, subject: str) -> float:
        return float(self.store.lockout_remaining(subject, self._monotonic()))

    def _locked_out(self, event: str, name: str | None, start: float, stages: dict[str, float]) -> Decision | None:
        """The refusal of a decision asked while locked out, else None: verify of ``name`` waits for that user's
        own back-off and the shared identify one (so strangers cannot dodge it), identify for the shared one."""
        left = self._locked(IDENTIFY_SUBJECT)
        if name is not None:
            left = max(left, self._locked(name))
        if left <= 0:
            return None
        subject = IDENTIFY_SUBJECT if name is None else name
        return self._finish(event, subject, name, math.nan, f"locked out: try again in {math.ceil(left)} s", False,
                            False, start, stages)

    def _identified(self, user: str | None, score: float, reason: str, ok: bool, start: float,
                    stages: dict[str, float], threshold: float | None = None) -> Decision:
        """Finish an identify: a match for a user locked out (by verify failures) is refused, not counted; a
        non-match counts only toward the shared, capped back-off, never toward any user (so a stranger cannot
        lock an enrolled user out)."""
        if ok and user is not None:
            left = self._locked(user)
            if left > 0:
                return self._finish("identify", IDENTIFY_SUBJECT, None, math.nan,
                                    f"locked out: try again in {math.ceil(left)} s", False, False, start, stages,
                                    threshold)
        return self._finish("identify", IDENTIFY_SUBJECT, user if ok else None, score, reason, ok, True, start,
                            stages, threshold)

    # --- decisions ------------------------------------------------------------------------------------------

    def verify(self, name: str, image: np.ndarray) -> Decision:
        """1:1: does ``image`` match any enrolled sample of ``name`` (current model only)?"""
        check_user_name(name)
        start, stages = self._timer(), {}
        refused = self._locked_out("verify", name, start, stages)
        if refused is not None:
            return refused
        vector, problem = self._probe_audited("verify", name, image, stages)
        probe, why = self._minutiae_of(image, stages) if vector is not None else (None, None)
        if vector is None or why is not None:
            return self._finish("verify", name, name, math.nan, problem or why or "poor capture", False, False,
                                start, stages)
        if self.minutiae is not None:
            galleries = self._galleries(stages)
            if name in galleries.embedding.users and self.stale_users(only=name):  # e.g. NBIS templates (issue 15)
                return self._finish("verify", name, name, math.nan, "needs re-enrolment: enrolled with another "
                                    "minutiae matcher", False, True, start, stages)
            if name in galleries.embedding.users:
                score, threshold = self._user_score(name, vector, probe, galleries, stages)
                if math.isinf(threshold):
                    return self._finish("verify", name, name, math.nan, "needs re-enrolment: enrolled without "
                                        f"minutiae templates, and the embedding alone does not support the "
                                        f"{self.security!r} level", False, True, start, stages)
                ok = accept(score, threshold)
                return self._finish("verify", name, name, score, "match" if ok else "no match", ok, True, start,
                                    stages, threshold)
        t = self._timer()
        templates = self.store.user_templates(name, self.modality, self.model_id)
        stages["store"] = (self._timer() - t) * 1000
        if len(templates) == 0:
            reason = "not enrolled"
            if self.store.has_user(name):
                reason = "needs re-enrolment: enrolled with another model" if name in self.stale_users() else (
                    f"no {self.modality} templates enrolled")
            return self._finish("verify", name, name, math.nan, reason, False, True, start, stages)
        t = self._timer()
        score = verify_score(vector, templates)
        stages["match"] = (self._timer() - t) * 1000
        ok = accept(score, self.threshold)
        return self._finish("verify", name, name, score, "match" if ok else "no match", ok, True, start, stages)

    def identify(self, image: np.ndarray) -> Decision:
        """1:N: the best-matching enrolled user, accepted only at or above the threshold."""
        start, stages = self._timer(), {}
        refused = self._locked_out("identify", None, start, stages)
        if refused is not None:
            return refused
        vector, problem = self._probe_audited("identify", None, image, stages)
        probe, why = self._minutiae_of(image, stages) if vector is not None else (None, None)
        if vector is None or why is not None:
            return self._finish("identify", IDENTIFY_SUBJECT, None, math.nan, problem or why or "poor capture",
                                False, False, start, stages)
        if self.minutiae is not None:
            return self._identify_fused(vector, probe, start, stages)
        t = self._timer()
        gallery = self.store.gallery(self.modality, self.model_id)
        stages["store"] = (self._timer() - t) * 1000
        t = self._timer()
        best = identify(vector, gallery.matrix, gallery.users, top=1)
        stages["match"] = (self._timer() - t) * 1000
        if not best:
            return self._finish("identify", IDENTIFY_SUBJECT, None, math.nan, "nobody enrolled", False, False,
                                start, stages)  # no comparison was made: not a failed attempt
        ok = accept(best[0].score, self.threshold)
        return self._identified(best[0].user, best[0].score, "match" if ok else "no match", ok, start, stages)

    def _identify_fused(self, vector: np.ndarray, probe: bytes | None, start: float,
                        stages: dict[str, float]) -> Decision:
        """1:N with minutiae: the users with the best cosines are compared by fused score; best margin wins."""
        galleries = self._galleries(stages)
        t = self._timer()
        top, captures = shortlist_plan(galleries.embedding.users)
        shortlist = identify(vector, galleries.embedding.matrix, galleries.embedding.users, top=top)
        stages["match"] = (self._timer() - t) * 1000
        if not shortlist:
            return self._finish("identify", IDENTIFY_SUBJECT, None, math.nan, "nobody enrolled", False, False,
                                start, stages)
        scored = [(c.user, *self._user_score(c.user, vector, probe, galleries, stages, captures)) for c in shortlist]
        user, score, threshold = max(scored, key=lambda r: (r[1] - r[2], r[0]))
        ok = accept(score, threshold)
        return self._identified(user, score, "match" if ok else "no match", ok, start, stages, threshold)

    def stale_users(self, only: str | None = None) -> list[str]:
        """Users whose templates belong to another model: listed for re-enrolment, never matched. ``only`` looks up
        that one user alone (the verify path asks on every probe; a scan of every user would grow with the store).

        With minutiae on, minutiae templates of another backend (e.g. NBIS ISO records once biolock's own matcher
        decides) count too: another extractor's minutiae cannot be turned into ours faithfully."""
        current = {self.modality: self.model_id}
        if self.minutiae is not None:
            current[self.minutiae.store_modality] = self.minutiae.matcher.template_id
        return list(self.store.stale_users(current, only))

    # --- enrolment ------------------------------------------------------------------------------------------

    def enroll(self, name: str, finger: str, images: Iterable[np.ndarray],
               on_capture: Callable[[CaptureFeedback], None] | None = None,
               allow_duplicate: bool = False) -> EnrolResult:
        """Take captures until ``enrol.captures`` good ones agree, refuse duplicates, store all or nothing.

        A duplicate (the finger matches another user at the decision threshold) is refused naming that user,
        unless ``allow_duplicate`` (audited either way)."""
        check_user_name(name)
        if finger not in FINGERS:
            raise EnrolmentError(f"unknown finger {finger!r}; choose one of: {', '.join(FINGERS)}")
        need, limit = self.enrol_config.captures, self.enrol_config.max_attempts
        good: list[np.ndarray] = []  # every usable capture, by attempt number in ``good_at``
        good_min: list[bytes] = []  # their minutiae templates (when minutiae are on)
        pair_scores = np.zeros((0, 0))  # fused scores between good captures (when minutiae are on)
        good_at: list[int] = []
        group: list[int] = []  # this finger's agreeing captures: grows by one capture at a time (never jumps)
        rejected: list[tuple[int, str]] = []
        attempts = 0
        seen: dict[bytes, int] = {}  # capture digest -> attempt: a sensor never gives the same bytes twice

        def tell(index: int, ok: bool, message: str) -> None:
            if on_capture is not None:
                on_capture(CaptureFeedback(index, ok, message, len(group), need))

        for image in images:
            attempts += 1
            why = repeated_capture(seen, image, attempts)
            if why is not None:
                rejected.append((attempts, why))
                tell(attempts, False, why)
                if attempts >= limit:
                    break
                continue
            vector, problem = self._probe(image, {})
            template, why = self._minutiae_of(image, {}, enrol=True) if vector is not None else (None, None)
            if vector is None or why is not None:
                rejected.append((attempts, problem or why or "poor capture"))
                tell(attempts, False, problem or why or "poor capture")
            else:
                good.append(vector)
                good_at.append(attempts)
                if template is not None:
                    good_min.append(template)
                largest, pair_scores = self._agreeing(good, good_min, len(good), pair_scores)
                group = grow_group(group, largest, len(good) - 1)
                if len(good) - 1 in group:
                    tell(attempts, True, "good capture: lift and place again" if len(group) < need else "done")
                else:
                    tell(attempts, False, DISAGREE)
            if len(group) >= need or attempts >= limit:
                break
        chosen = set(group)
        rejected += [(at, DISAGREE) for i, at in enumerate(good_at) if i not in chosen]
        rejected.sort()
        if len(group) < need:
            reason = f"only {len(group)} of {need} agreeing good captures after {attempts} attempts"
            self.store.audit("enrol", user=name, decision="failed", detail=reason[:200])
            return EnrolResult(False, name, finger, 0, attempts, rejected, reason)
        matrix = np.stack([good[i] for i in group])
        other = self._duplicate_of(name, matrix, [good_min[i] for i in group] if self.minutiae else None)
        if other is not None and not allow_duplicate:
            reason = (f"this finger is already enrolled to user {other!r} (it matches at the {self.security} "
                      "threshold); if they are different people, enrol again with --allow-duplicate")
            self.store.audit("enrol", user=name, decision="duplicate", detail=reason[:200])
            return EnrolResult(False, name, finger, 0, attempts, rejected, reason, duplicate_of=other)
        if other is not None:
            self.store.audit("enrol", user=name, decision="duplicate-allowed",
                             detail=f"matches user {other!r}; enrolled anyway (--allow-duplicate)"[:200])
        with self.store.batch():  # embeddings and minutiae together or not at all
            self.store.enroll(name, finger, self.modality, self.model_id, list(matrix))  # audits itself
            if self.minutiae is not None:
                self.store.enroll(name, finger, self.minutiae.store_modality, self.minutiae.matcher.template_id,
                                  [pack_template(good_min[i]) for i in group])
        return EnrolResult(True, name, finger, len(group), attempts, rejected)

    def _agreeing(self, good: list[np.ndarray], good_min: list[bytes], need: int,
                  pair_scores: np.ndarray) -> tuple[list[int], np.ndarray]:
        """The connected group of captures: by cosine alone, or by fused pair score when minutiae are on.

        With minutiae, ``pair_scores`` holds the fused scores of the earlier captures and grows by the newest
        one's row, so each capture costs one minutiae comparison per earlier capture, not all pairs again.
        """
        if self.minutiae is None:
            return agreeing_subset(np.stack(good), self.agreement_threshold, need), pair_scores
        n = len(good)
        grown = np.full((n, n), -np.inf)
        grown[:n - 1, :n - 1] = pair_scores
        if n > 1:
            cosines = np.stack(good[:-1]) @ good[-1]
            fused = self.minutiae.fused(cosines, self.minutiae.compare_all(good_min[-1], good_min[:-1]))
            grown[n - 1, :n - 1] = grown[:n - 1, n - 1] = fused
        return connected_group(grown >= self.agreement_threshold, need), grown

    def _duplicate_of(self, name: str, matrix: np.ndarray, minutiae: list[bytes] | None = None) -> str | None:
        """Another user that at least ``DUPLICATE_CAPTURES`` of the new captures match at the decision threshold.

        Why more than one capture: each capture is compared with every capture of each shortlisted user, so one
        capture matching is what a single false match of those ~25 pair comparisons per user looks like (the
        synthetic people refused in the 8-person demo, seeds 1 and 3, each had exactly one such pair); the same
        finger enrolled twice matches with most of its captures. With minutiae, the same fused score and
        calibrated threshold as decisions (issue 16); users enrolled without minutiae templates, and everything
        when minutiae are off, by cosine at the embedding's threshold.
        """
        need = min(DUPLICATE_CAPTURES, len(matrix))
        hits: dict[str, int] = {}

        def matched(user: str) -> bool:
            hits[user] = hits.get(user, 0) + 1
            return hits[user] >= need

        if self.minutiae is not None and minutiae is not None:
            galleries = self._galleries({})
            users = list(galleries.embedding.users)
            keep = np.array([u != name for u in users], dtype=bool)
            if not keep.any():
                return None
            others = [u for u, k in zip(users, keep, strict=True) if k]
            sub = np.asarray(galleries.embedding.matrix)[keep]
            for vector, probe in zip(matrix, minutiae, strict=True):
                top, captures = shortlist_plan(others)
                for cand in identify(vector, sub, others, top=top):
                    score, threshold = self._user_score(cand.user, vector, probe, galleries, {}, captures)
                    if accept(score, threshold) and matched(cand.user):
                        return cand.user
            return None
        gallery = self.store.gallery(self.modality, self.model_id)
        users = list(gallery.users)
        if not users:
            return None
        keep = np.array([u != name for u in users], dtype=bool)
        if not keep.any():
            return None
        others, sub = [u for u, k in zip(users, keep, strict=True) if k], np.asarray(gallery.matrix)[keep]
        for vector in matrix:
            best = identify(vector, sub, others, top=1)
            if best and accept(best[0].score, self.embedding_threshold) and matched(best[0].user):
                return best[0].user
        return None

    def close(self) -> None:
        try:
            self.embedder.close()
        finally:
            self.store.close()

    def __enter__(self) -> Authenticator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
