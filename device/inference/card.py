"""Model cards (contract 5): the JSON beside every .tflite that says what the model expects and how to decide.

Why a card: a model is only safe to use with the preprocessing, quantization and thresholds it was trained and
measured with. Everything is checked at load time (sha256 of the file, tensor shapes and types, preprocessing id,
threshold keys), and every problem is a ModelError naming the card file, so a wrong or swapped model stops the
device instead of silently matching with garbage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.errors import ModelError

CARD_FORMAT = "biolock-model-card/1"
QUANTIZATIONS = ("int8-full", "float32")
DTYPES = ("int8", "uint8", "float32")
THRESHOLD_KEYS = ("1e-3", "1e-4", "2e-5")
MODALITIES = ("fingerprint", "vein")


def _preprocessing_ids() -> dict[str, tuple[str, ...]]:
    from device.preprocess import KNOWN_PREPROCESSING

    return dict(KNOWN_PREPROCESSING)


@dataclass(frozen=True)
class TensorSpec:
    """One model tensor as the card describes it."""

    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in ("int8", "uint8")


@dataclass(frozen=True)
class ModelCard:
    """A validated model card; ``path`` is the card file, ``model_path`` the .tflite beside it."""

    path: Path
    name: str
    version: str
    modality: str
    file: str
    sha256: str
    onnx_file: str | None
    onnx_sha256: str | None
    input: TensorSpec
    output: TensorSpec
    embedding_size: int
    preprocessing: str
    quantization: str
    thresholds: dict[str, float]
    metrics: dict[str, Any]
    trained_on: str
    created: str
    calibration: Any = None  # device.calibration.fields.Calibration, or None on a card from before issue 16

    @property
    def model_path(self) -> Path:
        return self.path.parent / self.file

    @property
    def onnx_path(self) -> Path | None:
        return self.path.parent / self.onnx_file if self.onnx_file else None

    @property
    def model_id(self) -> str:
        """The id templates are stored under: a new file (even same name and version) gives a new id."""
        return f"{self.name}@{self.version}+{self.sha256[:12]}"

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the preprocessed image must have."""
        return int(self.input.shape[1]), int(self.input.shape[2])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _need(raw: dict[str, Any], key: str, typ: type | tuple[type, ...], where: Path) -> Any:
    if key not in raw:
        raise ModelError(f"{where}: model card lacks '{key}'")
    value = raw[key]
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise ModelError(f"{where}: model card '{key}' has the wrong type ({type(value).__name__})")
    return value


def _tensor(raw: Any, key: str, where: Path) -> TensorSpec:
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: model card '{key}' must be an object")
    shape = _need(raw, "shape", list, where)
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ModelError(f"{where}: model card '{key}.shape' must be positive integers, got {shape}")
    dtype = _need(raw, "dtype", str, where)
    if dtype not in DTYPES:
        raise ModelError(f"{where}: model card '{key}.dtype' {dtype!r} is not one of {', '.join(DTYPES)}")
    scale = float(raw.get("scale") or 0.0)
    zero = int(raw.get("zero_point") or 0)
    if dtype in ("int8", "uint8") and not scale > 0:
        raise ModelError(f"{where}: model card '{key}' is {dtype} but has no positive quantization scale")
    return TensorSpec(tuple(shape), dtype, scale, zero)


def parse_card(raw: Any, path: Path) -> ModelCard:
    """Validate a decoded card (no file checks); ``path`` only names it in errors and locates the model."""
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: a model card must be a JSON object")
    fmt = raw.get("format")
    if fmt != CARD_FORMAT:
        raise ModelError(f"{path}: unknown model card format {fmt!r} (expected {CARD_FORMAT!r})")
    modality = _need(raw, "modality", str, path)
    if modality not in MODALITIES:
        raise ModelError(f"{path}: modality {modality!r} is not one of {', '.join(MODALITIES)}")
    inp, out = _tensor(raw.get("input"), "input", path), _tensor(raw.get("output"), "output", path)
    if len(inp.shape) != 4 or inp.shape[0] != 1 or inp.shape[3] != 1:
        raise ModelError(f"{path}: input shape must be [1, H, W, 1] (one grey image), got {list(inp.shape)}")
    size = _need(raw, "embedding_size", int, path)
    if size <= 0 or out.shape[-1] != size:
        raise ModelError(f"{path}: embedding_size {size} does not match output shape {list(out.shape)}")
    quant = _need(raw, "quantization", str, path)
    if quant not in QUANTIZATIONS:
        raise ModelError(f"{path}: quantization {quant!r} is not one of {', '.join(QUANTIZATIONS)}")
    if quant == "int8-full" and not (inp.quantized and out.quantized):
        raise ModelError(f"{path}: quantization is int8-full but the input/output tensors are not int8")
    prep = _need(raw, "preprocessing", str, path)
    known = _preprocessing_ids()
    if not any(prep in ids for ids in known.values()):
        every = sorted(i for ids in known.values() for i in ids)
        raise ModelError(f"{path}: preprocessing {prep!r} is unknown to this device (knows {every})")
    if prep not in known.get(modality, ()):
        raise ModelError(f"{path}: preprocessing {prep!r} does not belong to modality {modality!r}")
    thresholds = _need(raw, "thresholds", dict, path)
    for key in THRESHOLD_KEYS:
        value = thresholds.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not -1.0 <= value <= 1.0:
            raise ModelError(f"{path}: thresholds['{key}'] must be a cosine in [-1, 1], got {value!r}")
    if not thresholds["1e-3"] <= thresholds["1e-4"] <= thresholds["2e-5"]:
        raise ModelError(f"{path}: thresholds must not decrease as the false-match rate falls "
                         f"(1e-3 <= 1e-4 <= 2e-5), got {[thresholds[k] for k in THRESHOLD_KEYS]}")
    sha = _need(raw, "sha256", str, path).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ModelError(f"{path}: sha256 must be 64 hex digits")
    onnx_file = raw.get("onnx_file")
    calibration = None
    if "calibration" in raw:
        from device.calibration.fields import parse_calibration

        calibration = parse_calibration(raw["calibration"], thresholds, str(path), ModelError)
    return ModelCard(
        path=path, name=_need(raw, "name", str, path), version=_need(raw, "version", str, path),
        modality=modality, file=_need(raw, "file", str, path), sha256=sha,
        onnx_file=onnx_file if isinstance(onnx_file, str) and onnx_file else None,
        onnx_sha256=(raw.get("onnx_sha256") or None), input=inp, output=out, embedding_size=size,
        preprocessing=prep, quantization=quant,
        thresholds={k: float(v) for k, v in thresholds.items() if isinstance(v, (int, float))},
        metrics=dict(raw.get("metrics") or {}), trained_on=str(raw.get("trained_on", "")),
        created=str(raw.get("created", "")), calibration=calibration,
    )


def load_card(path: Path | str, *, verify: bool = True) -> ModelCard:
    """Read and validate a model card; with ``verify`` the .tflite must exist and match its sha256."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"model card not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON model card ({exc})") from exc
    card = parse_card(raw, path)
    if verify:
        verify_file(card.model_path, card.sha256, path)
    return card


def verify_file(model: Path, expected: str | None, card_path: Path) -> None:
    """The model file must exist and hash to what the card says (a swapped file is refused)."""
    if not model.is_file():
        raise ModelError(f"{card_path}: model file {model.name} is missing (looked in {model.parent})")
    if expected is None:
        raise ModelError(f"{card_path}: no sha256 for {model.name}")
    actual = sha256_file(model)
    if actual != expected.lower():
        raise ModelError(
            f"{card_path}: {model.name} does not match the card (sha256 {actual[:12]}..., card says "
            f"{expected[:12]}...): the model and card belong to different builds"
        )
