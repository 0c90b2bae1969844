"""The device's ``fusion`` decision mode: one capture per modality, fused with the fusion card's learned weights.

Why it is built on the single-modality pipeline: each modality is served by its own ``Authenticator`` (its model
card, preprocessing, quality gate, embedder, templates and threshold), all sharing one template store, so a
person is enrolled in both modalities under the same name with the same code and checks as in single mode. This
module only adds what fusion needs: per modality the best cosine for the claimed (or each candidate) user, then
``device.fusion.fuse_decision`` with the card's normalizers, weights and the fused threshold for the configured
security level.

Fail closed: a modality that was not captured, failed its quality gate or has no templates for the user counts
as *missing*; a missing modality rejects unless ``matching.fusion_fallback`` is on, and then the decision is made
on the present modality alone at its own card threshold and the audit record says so (``fusion fallback: ...``).
The card is checked at start: its matchers must be exactly the configured modalities, and a matcher fitted on a
named model must be fitted on the model the device is configured with (scores of another model mean nothing).

Lockout: like single mode, ``verify`` counts failures per user and ``identify`` under ``IDENTIFY_SUBJECT``; an
attempt counts when at least one modality was compared with templates (a probe of one modality is not free).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device.calibration.policy import DecisionInfo, describe_fusion
from device.config import Config
from device.errors import ConfigError
from device.fusion import FusionCard, FusionCardError, FusionDecision, fuse_decision, load_fusion_card
from device.matching import identify_scores, verify_score
from device.pipeline import (
    IDENTIFY_SUBJECT,
    Authenticator,
    CaptureFeedback,
    Decision,
    EnrolResult,
    RequestError,
    check_user_name,
)
from device.store.audit import score_bucket

log = logging.getLogger("biolock.fusion")
MODALITIES = ("fingerprint", "vein")  # the fusion card's matcher names are the modalities they score


@dataclass(frozen=True)
class FusedDecision(Decision):
    """A ``Decision`` plus what fusion saw: raw cosine per modality (None = missing) and why one was missing."""

    scores: dict[str, float | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    fallback_used: bool = False
    audit_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d["scores"] = {k: None if v is None or not math.isfinite(v) else round(v, 4) for k, v in self.scores.items()}
        return d


def _vein_lines(embedder: Any) -> Any:
    """The vein line check when a card fitted for this vein model sits beside it (``<model>_lines.json``): the vein
    model then sees the finger region of a whole frame, not the housing, and a frame without one is refused with
    its reason (issue 19). The fused decision here still uses the vein cosine only; absent card: None."""
    from device.vein.setup import default_card_path, load_vein_check

    path = default_card_path(embedder.card.path)
    return load_vein_check(path, embedder.model_id) if path.is_file() else None


def check_card_models(card: FusionCard, model_ids: Mapping[str, str], source: str) -> None:
    """Each matcher must score its own modality with the configured model (when the card names one)."""
    for spec in card.matchers:
        if spec.modality != spec.name:
            raise FusionCardError(f"{source}: matcher {spec.name!r} scores modality {spec.modality!r}; the device "
                                  f"fuses matchers named after their modality ({', '.join(MODALITIES)})")
        configured = model_ids[spec.name]
        if spec.model is not None and spec.model != configured:
            raise FusionCardError(f"{source}: matcher {spec.name!r} was fitted on model {spec.model} but the device "
                                  f"is configured with {configured}; build a card for these models (biolock train "
                                  "fusion-report --out DIR writes DIR/fusion_card.json) or configure the card's models")


def _checked_level(config: Config, card: FusionCard, path: Path, model_ids: Mapping[str, str]) -> DecisionInfo:
    """The fused level against the card's calibration (refused at start unless allowed, as in single mode).

    Why the fallback is logged here: a decision on one modality alone uses the card's single-matcher thresholds,
    which its calibration does not measure; the config must name it, and every start says so."""
    info = describe_fusion(config, card, path, model_ids)
    if config.matching.fusion_fallback:
        log.warning("FALLBACK: matching.fusion_fallback = true: with one modality missing, the other decides alone "
                    "at the fusion card's single-matcher threshold (not covered by its calibration)")
    return info


def _missing_text(missing: Mapping[str, str]) -> str:
    return "; ".join(f"{m} missing: {why}" for m, why in missing.items())


class FusionAuthenticator:
    """Verify and identify with two modalities fused by a fusion card; enrol each modality under one name."""

    def __init__(self, scorers: Mapping[str, Authenticator], store: Any, card: FusionCard, *, security: str,
                 fallback: bool, source: str = "fusion card", clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        if set(scorers) != set(card.matcher_names):
            raise FusionCardError(f"{source}: the card fuses [{', '.join(card.matcher_names)}] but the device scores "
                                  f"[{', '.join(sorted(scorers))}]")
        check_card_models(card, {m: a.model_id for m, a in scorers.items()}, source)
        self.scorers = {m: scorers[m] for m in card.matcher_names}
        self.store, self.card, self.security, self.fallback = store, card, security, fallback
        self.source = source
        self.decision_info: DecisionInfo | None = None  # set by from_config (device.calibration.policy)
        # an unknown security level fails here, at start, not per attempt
        self.threshold = float(fuse_decision({}, card, security, fallback).threshold)
        self._clock, self._timer = clock, timer
        self._monotonic = clock if clock is not time.time else time.monotonic  # lockout durations (issue 17)

    @classmethod
    def from_config(cls, config: Config, state_dir: Path, *, card_paths: Mapping[str, Path | None] | None = None,
                    fusion_card: Path | None = None, key: bytes | None = None,
                    clock: Callable[[], float] = time.time) -> FusionAuthenticator:
        """Both models, the shared store and the checked fusion card; every mismatch fails here, naming the file."""
        if config.device.modality != "fusion":
            raise ConfigError(f"device.modality = {config.device.modality!r}: the fusion pipeline needs 'fusion'")
        path = fusion_card or config.matching.fusion_card
        if path is None:
            raise ConfigError("device.modality = 'fusion' needs matching.fusion_card = the fusion card JSON "
                              "(`biolock train fusion-report --out DIR` writes DIR/fusion_card.json)")
        card = load_fusion_card(path, expected_matchers=MODALITIES)  # before loading any model: fail fast
        from device.inference import build_embedder
        from device.inference.threads import limit_runtime_threads
        from device.store import TemplateStore

        paths = dict(card_paths or {})
        chosen = {"fingerprint": paths.get("fingerprint") or config.inference.model,
                  "vein": paths.get("vein") or config.inference.vein_model}
        if chosen["vein"] is None:
            from models import default_card

            chosen["vein"] = default_card("vein")
        limit_runtime_threads(config.inference.num_threads)
        embedders: dict[str, Any] = {}
        store = None
        try:
            for m in MODALITIES:
                embedders[m] = build_embedder(config.inference, chosen[m], modality=m, state_dir=state_dir)
            store = TemplateStore.open(Path(state_dir), key, lockout_config=config.lockout)
            scorers = {m: Authenticator(e, store, modality=m, security=config.matching.security,
                                        enrol=config.enrol, clock=clock,
                                        minutiae=_vein_lines(e) if m == "vein" else None)
                       for m, e in embedders.items()}
            auth = cls(scorers, store, card, security=config.matching.security,
                       fallback=config.matching.fusion_fallback, source=f"fusion card {path}", clock=clock)
            auth.decision_info = _checked_level(config, card, path, auth.model_ids)
            return auth
        except BaseException:
            for e in embedders.values():
                e.close()
            if store is not None:
                store.close()
            raise

    @property
    def model_ids(self) -> dict[str, str]:
        return {m: a.model_id for m, a in self.scorers.items()}

    # --- stages ---------------------------------------------------------------------------------------------

    def _embed(self, event: str, user: str | None, captures: Mapping[str, np.ndarray | None],
               reasons: Mapping[str, str] | None, stages: dict[str, float]) -> tuple[dict[str, np.ndarray],
                                                                                      dict[str, str]]:
        """Per modality: the probe embedding, or why it is missing (not captured, poor quality)."""
        unknown = sorted(set(captures) - set(self.scorers))
        if unknown:
            raise RequestError(f"captures for [{', '.join(unknown)}]; fusion takes {', '.join(self.scorers)}")
        vectors: dict[str, np.ndarray] = {}
        missing: dict[str, str] = {}
        for m, auth in self.scorers.items():
            image = captures.get(m)
            if image is None:
                missing[m] = (reasons or {}).get(m) or "not captured"
                continue
            sub: dict[str, float] = {}
            vector, problem = auth._probe_audited(event, user, image, sub)  # the single pipeline's stages
            stages.update({f"{m}.{k}": v for k, v in sub.items()})
            if vector is None:
                missing[m] = problem or "poor capture"
            else:
                vectors[m] = vector
        return vectors, missing

    def _decide(self, scores: Mapping[str, float], missing: dict[str, str]) -> tuple[FusionDecision, str]:
        """``fuse_decision`` on the card, and the Decision reason (stable first words, see device/pipeline.py)."""
        fused = fuse_decision({m: scores.get(m) for m in self.scorers}, self.card, self.security, self.fallback)
        gone = _missing_text(missing)
        verdict = "match" if fused.accepted else "no match"
        if fused.fallback_used:
            reason = f"{verdict} on {', '.join(fused.used)} alone (fusion fallback; {gone})"
            if any(spec.thresholds is None for spec in self.card.matchers if spec.name in fused.used):
                reason = f"{reason}; {fused.reason}"
        elif missing:
            reason = f"{gone}: fusion needs {' and '.join(self.scorers)} (fallback is off)"
        elif not math.isfinite(fused.score):
            reason = f"no match ({fused.reason})"
        else:
            reason = f"{verdict} (fused)"
        return fused, reason

    def _finish(self, event: str, subject: str, user: str | None, fused: FusionDecision | None, reason: str,
                counted: bool, start: float, stages: dict[str, float], scores: Mapping[str, float],
                missing: Mapping[str, str]) -> FusedDecision:
        """Lockout counters and one audit record (with the fallback note); the Decision for the caller."""
        accepted = bool(fused is not None and fused.accepted)
        score = math.nan if fused is None else float(fused.score)
        now, t = self._monotonic(), self._timer()
        note = None if fused is None else fused.audit_note
        if note is None:
            detail = reason
        else:  # the note first, so the 200-character audit detail always keeps it
            why = "; ".join(f"{m}: {r}" for m, r in missing.items())
            detail = f"{note}: {'accepted' if accepted else 'rejected'}; {why}" if fused.fallback_used else (
                f"{note}; {why}")
        if counted and accepted:
            self.store.record_success(subject)
            if event == "identify" and user is not None:  # clears that user's own (verify) counter too
                self.store.record_success(user)
        elif counted:
            locked = self.store.record_failure(subject, now)
            if locked > 0:
                reason = f"{reason}; too many failures, locked for {locked:.0f} s"
                detail = f"{detail}; locked for {locked:.0f} s"
        stages["lockout"] = (self._timer() - t) * 1000
        latency = (self._timer() - start) * 1000
        shown = user if accepted or event == "verify" else None
        decision = FusedDecision(accepted, shown, score, self.threshold if fused is None else fused.threshold,
                                 reason, latency, stages, scores={m: scores.get(m) for m in self.scorers},
                                 missing=dict(missing), fallback_used=bool(fused and fused.fallback_used),
                                 audit_note=note)
        self.store.audit(event, user=shown, decision="accept" if accepted else "reject",
                         score_bucket=score_bucket(None if math.isnan(score) else score),
                         latency_ms=round(latency, 3), detail=detail[:200])
        return decision

    def _locked_out(self, event: str, subject: str, user: str | None, start: float) -> FusedDecision | None:
        left = float(self.store.lockout_remaining(subject, self._monotonic()))
        if left <= 0:
            return None
        return self._finish(event, subject, user, None, f"locked out: try again in {math.ceil(left)} s", False,
                            start, {}, {}, {})

    # --- decisions ------------------------------------------------------------------------------------------

    def verify(self, name: str, captures: Mapping[str, np.ndarray | None],
               reasons: Mapping[str, str] | None = None) -> FusedDecision:
        """1:1 on every modality captured (``captures[m]`` None = missing; ``reasons[m]`` says why)."""
        check_user_name(name)
        start, stages = self._timer(), {}
        locked = self._locked_out("verify", name, name, start) or self._locked_out("verify", IDENTIFY_SUBJECT, name,
                                                                                   start)
        if locked is not None:
            return locked
        vectors, missing = self._embed("verify", name, captures, reasons, stages)
        if not vectors:
            return self._finish("verify", name, name, None, _missing_text(missing), False, start, stages, {}, missing)
        t = self._timer()
        scores: dict[str, float] = {}
        for m, vector in vectors.items():
            auth = self.scorers[m]
            templates = self.store.user_templates(name, m, auth.model_id)
            if len(templates) == 0:
                missing[m] = f"no {m} templates enrolled for {name}"
            else:
                scores[m] = verify_score(vector, templates)
        stages["match"] = (self._timer() - t) * 1000
        if not scores:
            reason = "not enrolled" if not self.store.has_user(name) else (
                f"no {' or '.join(vectors)} templates enrolled for {name} with the configured models")
            return self._finish("verify", name, name, None, reason, True, start, stages, scores, missing)
        fused, reason = self._decide(scores, missing)
        return self._finish("verify", name, name, fused, reason, True, start, stages, scores, missing)

    def identify(self, captures: Mapping[str, np.ndarray | None],
                 reasons: Mapping[str, str] | None = None) -> FusedDecision:
        """1:N: every enrolled user's fused decision; the accepted one with the widest margin wins."""
        start, stages = self._timer(), {}
        locked = self._locked_out("identify", IDENTIFY_SUBJECT, None, start)
        if locked is not None:
            return locked
        vectors, missing = self._embed("identify", None, captures, reasons, stages)
        if not vectors:
            return self._finish("identify", IDENTIFY_SUBJECT, None, None, _missing_text(missing), False, start,
                                stages, {}, missing)
        t = self._timer()
        per_user: dict[str, dict[str, float]] = {}
        for m, vector in vectors.items():
            gallery = self.store.gallery(m, self.scorers[m].model_id)
            for user, score in identify_scores(vector, gallery.matrix, gallery.users).items():
                per_user.setdefault(user, {})[m] = score
        stages["match"] = (self._timer() - t) * 1000
        if not per_user:
            return self._finish("identify", IDENTIFY_SUBJECT, None, None, "nobody enrolled", False, start, stages,
                                {}, missing)
        best: tuple[tuple[bool, bool, float], str, FusionDecision, str, dict[str, float], dict[str, str]] | None = None
        for user in sorted(per_user):
            scores = per_user[user]
            gone = dict(missing)
            # no name in the reason: a refusal must not tell a stranger who is enrolled
            gone.update({m: f"the closest enrolled person has no {m} templates" for m in vectors if m not in scores})
            fused, reason = self._decide(scores, gone)
            margin = fused.score - fused.threshold if math.isfinite(fused.score) else -math.inf
            rank = (fused.accepted, not fused.fallback_used, margin)
            if best is None or rank > best[0]:
                best = (rank, user, fused, reason, scores, gone)
        _, user, fused, reason, scores, gone = best
        if fused.accepted:  # a user locked out by verify failures is refused here too (issue 17 item 1)
            held = self._locked_out("identify", user, None, start)
            if held is not None:
                return held
        return self._finish("identify", IDENTIFY_SUBJECT, user if fused.accepted else None, fused, reason, True,
                            start, stages, scores, gone)

    # --- enrolment and housekeeping -------------------------------------------------------------------------

    def enroll(self, name: str, finger: str, images: Mapping[str, Iterable[np.ndarray]],
               on_capture: Callable[[str, CaptureFeedback], None] | None = None) -> dict[str, EnrolResult]:
        """Enrol ``finger`` of ``name`` in each modality given (fingerprint first); stops at the first failure.

        Each modality is a normal single-mode enrolment (agreeing captures, duplicate check, atomic store), so a
        failed vein enrolment leaves a just-stored fingerprint in place: the result says which one to redo."""
        check_user_name(name)
        unknown = sorted(set(images) - set(self.scorers))
        if unknown:
            raise RequestError(f"images for [{', '.join(unknown)}]; fusion enrols {', '.join(self.scorers)}")
        results: dict[str, EnrolResult] = {}
        for m, auth in self.scorers.items():
            if m not in images:
                continue
            tell = None if on_capture is None else (lambda fb, m=m: on_capture(m, fb))
            results[m] = auth.enroll(name, finger, images[m], on_capture=tell)
            if not results[m].ok:
                break
        return results

    def stale_users(self) -> list[str]:
        return list(self.store.stale_users(self.model_ids))

    def close(self) -> None:
        try:
            for auth in self.scorers.values():
                auth.embedder.close()
        finally:
            self.store.close()

    def __enter__(self) -> FusionAuthenticator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
