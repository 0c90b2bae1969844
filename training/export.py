"""``biolock train export``: Keras model -> float32 and full-int8 .tflite, ONNX, and the model card (contract 5).

Steps, each of which can stop the export with numbers (``ExportError``):

1. prepare validation data with the device preprocessing (``--data``; with ``--split`` from a training run only
   its validation identities are used, so thresholds are measured on fingers the model never trained on);
2. convert to float32 TFLite, then to full-integer int8 (int8 input and output) calibrated on a representative
   set of those real preprocessed crops;
3. run both with LiteRT on the validation images: the int8 model must match the float one -- validation EER
   within the gate of ``training.export_gate`` (the larger of 0.5 points and the 95 % paired bootstrap interval's
   half-width, so it is sized by the validation set; ``--max-eer-delta`` overrides it and the card records which
   rule passed) and mean cosine between the two models' embeddings >= 0.99 -- else fail;
4. thresholds for FMR 1e-3 / 1e-4 / 2e-5 from the int8 model's impostor scores over *all* cross-identity pairs
   of the validation images (FVC's first-impression impostors are too few for 1/50,000; the count is recorded);
5. ONNX of the same float network via tf2onnx (checked with onnxruntime against Keras); on failure the exact
   error is recorded and the card says ``onnx_file: null``;
6. write everything under temporary names, then rename: the card last. No half-written export is left behind.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.errors import BiolockError, DatasetError, ModelError

log = logging.getLogger("biolock.export")

FMR_KEYS = {"1e-3": 1e-3, "1e-4": 1e-4, "2e-5": 2e-5}
CARD_FORMAT = "biolock-model-card/1"


class ExportError(ModelError):
    """The exported model failed a check (int8 vs float, ONNX, card); nothing was written."""


@dataclass
class ExportResult:
    card: Path
    int8: Path
    float32: Path | None
    onnx: Path | None
    onnx_error: str | None
    checks: dict = field(default_factory=dict)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert_float(model) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def convert_int8(model, representative: np.ndarray) -> bytes:
    """Full-integer int8 conversion (int8 input and output), calibrated on ``representative`` (N, H, W)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([img[None, ..., None].astype(np.float32)] for img in representative)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def convert_onnx(model, opset: int = 13) -> bytes:
    """ONNX of the float network via tf2onnx (Keras 3 / TF 2.21: ``from_keras`` works; see docs/training.md)."""
    import tensorflow as tf
    import tf2onnx

    h, w = (int(d) for d in model.input_shape[1:3])
    spec = (tf.TensorSpec((None, h, w, 1), tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    return proto.SerializeToString()


def onnx_embed(onnx_bytes: bytes, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = sess.run(None, {name: np.asarray(images, np.float32)[..., None]})[0]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def all_impostor_scores(emb: np.ndarray, labels: list[str], limit: int = 3_000_000, seed: int = 0) -> np.ndarray:
    """Scores of every pair of different identities (subsampled to ``limit`` pairs if there are more)."""
    lab = np.asarray(labels)
    n = len(lab)
    iu, ju = np.triu_indices(n, 1)
    diff = lab[iu] != lab[ju]
    iu, ju = iu[diff], ju[diff]
    if iu.size > limit:
        pick = np.random.default_rng(seed).choice(iu.size, limit, replace=False)
        iu, ju = iu[pick], ju[pick]
    return np.einsum("ij,ij->i", emb[iu], emb[ju])


def thresholds_from(impostor: np.ndarray) -> dict[str, float]:
    from training.metrics import threshold_at_fmr

    return {k: float(np.clip(threshold_at_fmr(impostor, v), -1.0, 1.0)) for k, v in FMR_KEYS.items()}


def compare_models(float_emb: np.ndarray, int8_emb: np.ndarray, labels, impressions) -> dict:
    """EER of both on the FVC protocol and the mean / minimum cosine between their embeddings."""
    from training.protocol import cosine_pair_scores, fvc_pairs, summarize

    gen, imp = fvc_pairs(list(labels), list(impressions))
    from training.export_gate import paired_eer_interval

    fg, fi = cosine_pair_scores(float_emb, gen), cosine_pair_scores(float_emb, imp)
    qg, qi = cosine_pair_scores(int8_emb, gen), cosine_pair_scores(int8_emb, imp)
    f, q = summarize(fg, fi), summarize(qg, qi)
    cos = np.einsum("ij,ij->i", float_emb, int8_emb)
    return {"float": f, "int8": q, "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()),
            "eer_delta": float(abs(q["eer"] - f["eer"])),
            "interval": paired_eer_interval(np.asarray(fg), np.asarray(fi), np.asarray(qg), np.asarray(qi))}


def check_match(checks: dict, max_eer_delta: float | None, min_cosine: float) -> None:
    """Raise ExportError with the numbers when the int8 model does not match the float one.

    With ``checks["interval"]`` the gate is ``training.export_gate`` (``max_eer_delta`` None: sized by the
    validation set; a number: that fixed override); its verdict is stored in ``checks["gate"]`` for the card.
    """
    from training.export_gate import FLOOR, decide, describe

    problems = []
    if checks.get("interval") is not None:
        gate = checks["gate"] = decide(checks["interval"], max_eer_delta)
        log.info("export gate: %s", describe(gate))
        if not gate["passed"]:
            problems.append(f"validation EER float {checks['float']['eer'] * 100:.2f}% vs int8 "
                            f"{checks['int8']['eer'] * 100:.2f}%: {describe(gate)} (override: --max-eer-delta)")
    elif checks["eer_delta"] > (FLOOR if max_eer_delta is None else max_eer_delta):
        max_eer_delta = FLOOR if max_eer_delta is None else max_eer_delta
        problems.append(f"validation EER float {checks['float']['eer'] * 100:.2f}% vs int8 "
                        f"{checks['int8']['eer'] * 100:.2f}% (difference {checks['eer_delta'] * 100:.2f} points "
                        f"> {max_eer_delta * 100:.2f})")
    if not checks["mean_cosine"] >= min_cosine:
        problems.append(f"mean cosine float vs int8 {checks['mean_cosine']:.4f} < {min_cosine}")
    if problems:
        raise ExportError("int8 model does not match the float model: " + "; ".join(problems) + ". Nothing written.")


def _validation_set(data, modality: str, size, split: Path | None, cache_dir: Path | None, progress: bool,
                    preprocessing_id: str | None = None):
    from training.prepared import prepare

    prepared = prepare(data, modality, size, cache_dir=cache_dir, min_impressions=2, progress=progress,
                       preprocessing_id=preprocessing_id)
    if split is not None:
        try:
            keep = set(json.loads(Path(split).read_text())["val"])
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{split}: not a split.json from `biolock train fit` ({exc})") from exc
        idx = [i for i, lab in enumerate(prepared.labels) if lab in keep]
        if not idx:
            raise DatasetError(f"{split}: none of its validation identities are in {data}")
        prepared = prepared.select(idx)
    if prepared.identity_count() < 2:
        raise DatasetError(f"{data}: export needs at least 2 validation identities, found {prepared.identity_count()}")
    return prepared


def export_model(
    keras_model: Path,
    data: str | Path,
    out_dir: Path,
    modality: str,
    name: str,
    version: str = "1.0.0",
    trained_on: str = "",
    stem: str | None = None,
    split: Path | None = None,
    representative: int = 300,
    onnx: bool = True,
    write_float: bool = True,
    max_eer_delta: float | None = None,
    min_cosine: float = 0.99,
    cache_dir: Path | None = None,
    progress: bool = True,
    model=None,
) -> ExportResult:
    """Export ``keras_model`` (or an in-memory ``model``) to ``out_dir``; see the module docstring."""
    from device.preprocess import PREPROCESSING_IDS
    from training.embed import KerasEmbedder, TfliteEmbedder

    if modality not in PREPROCESSING_IDS:
        raise BiolockError(f"unknown modality {modality!r}")
    embedder = KerasEmbedder(model) if model is not None else KerasEmbedder.load(Path(keras_model))
    model = embedder.model
    stem = stem or modality
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = _validation_set(data, modality, embedder.input_size, split, cache_dir, progress,
                               embedder.preprocessing_id)
    ok = np.nonzero(prepared.quality_ok)[0]
    pool = ok if ok.size >= 16 else np.arange(len(prepared))
    rep = prepared.images[np.random.default_rng(0).choice(pool, min(representative, pool.size), replace=False)]

    from device.nativelog import quiet_native

    with quiet_native("tensorflow", stdout=True):  # the converter's "Saved artifact ... Captures" chatter
        float_bytes = convert_float(model)
        int8_bytes = convert_int8(model, rep)
    tmp_paths: list[Path] = []
    try:
        f_tmp = _tmp(out_dir, f"{stem}_float32.tflite", tmp_paths)
        q_tmp = _tmp(out_dir, f"{stem}_int8.tflite", tmp_paths)
        f_tmp.write_bytes(float_bytes)
        q_tmp.write_bytes(int8_bytes)
        f_run, q_run = TfliteEmbedder(f_tmp), TfliteEmbedder(q_tmp)
        f_emb = f_run(prepared.images)
        q_emb = q_run(prepared.images)
        checks = compare_models(f_emb, q_emb, prepared.labels, prepared.impressions)
        log.info("float EER %.4f int8 EER %.4f mean cosine %.4f", checks["float"]["eer"], checks["int8"]["eer"],
                 checks["mean_cosine"])
        check_match(checks, max_eer_delta, min_cosine)
        impostor = all_impostor_scores(q_emb, prepared.labels)
        from training.card_calibration import calibrated, same_identity_scores  # issue 16: calibration block

        thresholds, calibration = calibrated(
            {f"synthetic:{trained_on or 'validation identities'}": (same_identity_scores(q_emb, prepared.labels),
                                                                    impostor)},
            "int8 embedding on the validation identities: every same-finger pair, cross-finger pairs", ceiling=1.0)

        onnx_name = onnx_sha = onnx_error = None
        if onnx:
            try:
                with quiet_native("tf2onnx", stdout=True):
                    onnx_bytes = convert_onnx(model)
                cos = np.einsum("ij,ij->i", onnx_embed(onnx_bytes, prepared.images[:64]), f_emb[:64])
                if not cos.min() > 0.999:
                    raise ExportError(f"ONNX output differs from the float model (min cosine {cos.min():.4f})")
                o_tmp = _tmp(out_dir, f"{stem}.onnx", tmp_paths)
                o_tmp.write_bytes(onnx_bytes)
                onnx_name, onnx_sha = f"{stem}.onnx", sha256_bytes(onnx_bytes)
            except Exception as exc:  # noqa: BLE001 - tf2onnx raises anything; record it exactly
                onnx_error = f"{type(exc).__name__}: {exc}"
                log.warning("ONNX export failed: %s", onnx_error)

        details = q_run.details()
        card = {
            "format": CARD_FORMAT, "name": name, "version": version, "modality": modality,
            "file": f"{stem}_int8.tflite", "sha256": sha256_bytes(int8_bytes),
            "onnx_file": onnx_name, "onnx_sha256": onnx_sha,
            "input": details["input"], "output": details["output"],
            "embedding_size": int(details["output"]["shape"][-1]),
            "preprocessing": prepared.preprocessing_id, "quantization": "int8-full",
            "thresholds": thresholds,
            "calibration": calibration,
            "metrics": {
                "eer": checks["int8"]["eer"], "genuine_pairs": checks["int8"]["genuine_pairs"],
                "impostor_pairs": checks["int8"]["impostor_pairs"], "fmr100": checks["int8"]["fmr100"],
                "float_eer": checks["float"]["eer"], "int8_vs_float_mean_cosine": round(checks["mean_cosine"], 5),
                "threshold_impostor_pairs": int(impostor.size), "validation_identities": prepared.identity_count(),
                "export_gate": _gate_for_card(checks, max_eer_delta),
            },
            "trained_on": trained_on, "created": _dt.date.today().isoformat(),
        }
        if onnx_error:
            card["onnx_error"] = onnx_error
        c_tmp = _tmp(out_dir, f"{stem}.json", tmp_paths)
        c_tmp.write_text(json.dumps(card, indent=2) + "\n")
        _verify_card(c_tmp, q_tmp, card)

        finals: dict[str, Path] = {}
        order = [(q_tmp, f"{stem}_int8.tflite")]
        if write_float:
            order.append((f_tmp, f"{stem}_float32.tflite"))
        if onnx_name:
            order.append((out_dir / f".{stem}.onnx.tmp", onnx_name))
        order.append((c_tmp, f"{stem}.json"))  # the card last: it only ever names files that exist
        for tmp, final in order:
            os.replace(tmp, out_dir / final)
            finals[final] = out_dir / final
    finally:
        for p in tmp_paths:
            p.unlink(missing_ok=True)
    return ExportResult(
        card=finals[f"{stem}.json"], int8=finals[f"{stem}_int8.tflite"],
        float32=finals.get(f"{stem}_float32.tflite"), onnx=finals.get(onnx_name) if onnx_name else None,
        onnx_error=onnx_error, checks=checks,
    )


def _gate_for_card(checks: dict, max_eer_delta: float | None) -> dict:
    """What passed the model: the rule, the allowed difference, the observed one and its interval."""
    gate = checks.get("gate") or {}
    return {"rule": gate.get("rule", "fixed"), "allowed_eer_delta": gate.get("allowed", max_eer_delta),
            "eer_delta": gate.get("delta"), "ci95": gate.get("ci95"), "max_eer_delta_override": max_eer_delta}


def _tmp(out_dir: Path, final: str, registry: list[Path]) -> Path:
    path = out_dir / f".{final}.tmp"
    registry.append(path)
    return path


def _verify_card(card_tmp: Path, model_tmp: Path, card: dict) -> None:
    """The device's own card parser must accept what we wrote, and the sha must be the model's."""
    from device.inference.card import parse_card, sha256_file

    parse_card(json.loads(card_tmp.read_text()), card_tmp)
    if sha256_file(model_tmp) != card["sha256"]:
        raise ExportError(f"{card_tmp}: card sha256 does not match the written model")
