"""Run any trained model on preprocessed images: a Keras file, a bare .tflite, or a .tflite with its model card.

Why one entry point: evaluation, export checks and reports must score the *same* thing the device runs. With a
card, the device's own ``LiteRTEmbedder`` is used (card checks included); a bare .tflite runs directly on
``ai_edge_litert`` with the quantization read from the file; a ``.keras`` model runs in TensorFlow.
Every embedder maps float32 (N, H, W) images in [0, 1] to L2-normalised (N, D) float32 rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from device.errors import ModelError

TFLITE_MAGIC = b"TFL3"


def _normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class KerasEmbedder:
    """A Keras embedding model (loaded with ``compile=False``)."""

    kind = "keras"

    def __init__(self, model, batch_size: int = 128, preprocessing_id: str | None = None):
        self.model = model
        self.batch_size = batch_size
        self.input_size = tuple(int(d) for d in model.input_shape[1:3])
        self.preprocessing_id = preprocessing_id  # None: the current one

    @classmethod
    def load(cls, path: Path) -> KerasEmbedder:
        import keras

        import training.nets  # noqa: F401  (registers L2Normalize)

        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
            raise ModelError(f"{path}: cannot load Keras model: {exc}") from exc
        return cls(model, preprocessing_id=run_preprocessing(Path(path).parent))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(images), self.batch_size):
            batch = np.asarray(images[s : s + self.batch_size], np.float32)[..., None]
            out.append(np.asarray(self.model(batch, training=False)))
        return _normalize(np.concatenate(out) if out else np.zeros((0, 1), np.float32))


def run_preprocessing(run_dir: Path) -> str | None:
    """The preprocessing id a `biolock train fit` run recorded (summary.json, else run.json written at its start,
    which an interrupted run also has); None if it recorded none."""
    for name in ("summary.json", "run.json"):
        try:
            value = json.loads((Path(run_dir) / name).read_text()).get("preprocessing")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, str):
            return value
    return None


def run_modality(run_dir: Path) -> str | None:
    """The modality a `biolock train fit` run recorded (run.json; older runs: the prefix of their preprocessing id).

    Why here, without TensorFlow: ``train eval runs/x/best.keras`` must know the modality before the 9 s import.
    """
    try:
        value = json.loads((Path(run_dir) / "run.json").read_text()).get("modality")
    except (OSError, ValueError, AttributeError):
        value = None
    if isinstance(value, str):
        return value
    prep = run_preprocessing(run_dir)
    return prep.split("-")[0] if prep and prep.split("-")[0] in ("fingerprint", "vein") else None


def check_tflite_file(path: Path) -> None:
    """A TFLite flatbuffer carries the identifier ``TFL3`` at bytes 4..8; anything else is refused by name."""
    try:
        head = Path(path).read_bytes()[:8]
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror})") from exc
    if len(head) < 8 or head[4:8] != TFLITE_MAGIC:
        raise ModelError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")


class TfliteEmbedder:
    """A .tflite file on ai_edge_litert, quantizing inputs / dequantizing outputs as the file says."""

    kind = "tflite"

    def __init__(self, path: Path, num_threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        check_tflite_file(path)
        from device.nativelog import quiet_native

        try:
            with quiet_native("litert"):  # the XNNPACK notice is C++ on fd 2
                self.interp = Interpreter(model_path=str(path), num_threads=num_threads)
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: LiteRT cannot load this model: {exc}") from exc
        self.path = Path(path)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.input_size = (int(self.inp["shape"][1]), int(self.inp["shape"][2]))
        self.preprocessing_id: str | None = None  # a bare .tflite does not say; the current one

    def details(self) -> dict:
        """Input/output shape, dtype and quantization as the model card records them."""

        def one(d):
            scale, zero = d["quantization"]
            return {"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                    "scale": float(scale), "zero_point": int(zero)}

        return {"input": one(self.inp), "output": one(self.out)}

    def raw(self, images: np.ndarray) -> np.ndarray:
        """Dequantized outputs, not normalised (for checks that want the model's own vector length)."""
        dt = np.dtype(self.inp["dtype"])
        scale, zero = self.inp["quantization"]
        rows = []
        for img in np.asarray(images, np.float32):
            x = img[None, ..., None]
            if dt != np.float32:
                info = np.iinfo(dt)
                x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dt)
            self.interp.set_tensor(self.inp["index"], x)
            self.interp.invoke()
            y = self.interp.get_tensor(self.out["index"]).reshape(-1)
            oscale, ozero = self.out["quantization"]
            if np.dtype(self.out["dtype"]) != np.float32:
                y = (y.astype(np.float32) - ozero) * oscale
            rows.append(y.astype(np.float32))
        return np.stack(rows) if rows else np.zeros((0, 1), np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return _normalize(self.raw(images))


class CardEmbedder:
    """The device's LiteRT embedder on a checked model card."""

    kind = "card"

    def __init__(self, card_path: Path, num_threads: int = 2):
        from device.inference.card import load_card
        from device.inference.litert import LiteRTEmbedder

        self.card = load_card(card_path)
        check_tflite_file(self.card.model_path)
        self.embedder = LiteRTEmbedder(self.card, num_threads=num_threads)
        self.input_size = self.card.input_size
        self.preprocessing_id = self.card.preprocessing

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.embedder.embed_batch(np.asarray(images, np.float32))


def find_card(tflite: Path) -> Path | None:
    """The model card beside a .tflite: any JSON in its folder whose ``file`` names it."""
    for candidate in sorted(Path(tflite).parent.glob("*.json")):
        try:
            raw = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(raw, dict) and raw.get("file") == Path(tflite).name:
            return candidate
    return None


def load_embedder(path: str | Path):
    """An embedder for a model card (.json), a .tflite (its card is used when one sits beside it) or .keras."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return CardEmbedder(path)
    if suffix == ".tflite":
        card = find_card(path)
        return CardEmbedder(card) if card is not None else TfliteEmbedder(path)
    if suffix in (".keras", ".h5"):
        return KerasEmbedder.load(path)
    check_tflite_file(path)  # unknown suffix: accept a flatbuffer, else say what it is not
    return TfliteEmbedder(path)


def modality_of(path: str | Path) -> str | None:
    """The modality a model card declares (None when there is no card)."""
    path = Path(path)
    card = path if path.suffix == ".json" else (find_card(path) if path.suffix == ".tflite" else None)
    if card is None:
        return run_modality(path.parent) if path.suffix in (".keras", ".h5") else None
    try:
        return json.loads(Path(card).read_text()).get("modality")
    except (OSError, ValueError):
        return None
