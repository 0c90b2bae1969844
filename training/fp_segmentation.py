"""Train and export the learned fingerprint segmentation (``device/fingerprint/learned_segment.py``).

Ground truth comes from the synthetic generator only: an impression's foreground is the master's finger outline
times the contact region, carried through the same placement and distortion as the ridges (``render_with_truth``
repeats ``training.synth.fp_impression.impression_image`` step by step, with the same random draws, so the image
is exactly the one ``render_impression`` gives). Real sets are never used for training.

Network: four 3x3 convolutions (dilation 1, 2, 4, 8; 31 blocks of context) and a 1x1 sigmoid, ~4.5k parameters,
on the 4 block features of ``learned_segment.block_features``. Exported like the embedders (``training/export.py``):
float32 TFLite, then full-integer int8 calibrated on synthetic features; the int8 model must agree with the float
one on held-out synthetic prints (share of blocks with the same decision >= ``MIN_AGREEMENT``) or nothing is
written; files are written under temporary names and the card last.

    biolock train fp-segment --out models          # 4-6 min on a shared 2-core machine
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import click
import cv2
import numpy as np

MIN_AGREEMENT = 0.98
CROPS = ((32, 32), (48, 48))  # training windows in blocks; every sample is at least the first
# FVC-like sensor sizes (width, height) at 500 dpi beside the shipped profiles: the real dev sets are 256x364 to
# 448x478, so the network sees those canvases (and their borders) without ever seeing a real print.
SIZES = ((300, 300), (256, 364), (448, 478), (388, 374), (296, 560), (400, 400), (256, 288))


def random_profile(rng: np.random.Generator):
    """A random optical or capacitive sensor look at 500 dpi (size from ``SIZES``, levels, noise, blur, depth)."""
    from training.synth.profiles import get_profile

    base = get_profile(str(rng.choice(["optical500", "r307", "r307-gentle", "capacitive192"])), "fingerprint")
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    bg = float(rng.uniform(120, 250))
    fg = float(rng.uniform(10, max(15.0, bg - 60)))
    return replace(base, name=f"{base.name}-{w}x{h}", width=w, height=h, dpi=500, bits=int(rng.choice([4, 8, 8])),
                   background=bg, foreground=fg, noise=float(rng.uniform(2, 16)), blur=float(rng.uniform(0.5, 1.3)))


def render_with_truth(identity_seed: int, impression: int, profile) -> tuple[np.ndarray, np.ndarray]:
    """An impression (uint8) and its foreground truth (float32 in [0, 1]): finger outline x contact region."""
    from training.synth.fingerprint import cached_master
    from training.synth.fp_impression import impression_with_contact

    rng = np.random.default_rng([int(identity_seed), 0xF2, int(impression)])
    return impression_with_contact(cached_master(int(identity_seed)), profile, rng)


def features_and_blocks(grey: np.ndarray, truth: np.ndarray | None = None):
    """What the device computes for a 500-dpi capture: block features, the classic block mask, and (given the
    pixel truth) the share of each block inside the finger. Stages exactly as ``extract.prepare``."""
    from device.fingerprint import params
    from device.fingerprint.extract import bandpass, check_capture, normalize
    from device.fingerprint.learned_segment import block_features
    from device.fingerprint.orientation import orientation_field
    from device.fingerprint.segment import block_foreground

    img = check_capture(grey)
    b = params.BLOCK
    h0, w0 = img.shape
    img = cv2.copyMakeBorder(img, 0, -h0 % b, 0, -w0 % b, cv2.BORDER_REPLICATE)
    raw = bandpass(img)
    field = orientation_field(normalize(raw))
    feats = block_features(img, raw, field.block_coherence)
    size = (img.shape[1] // b, img.shape[0] // b)
    energy = cv2.resize(raw * raw, size, interpolation=cv2.INTER_AREA)
    classic = block_foreground(energy, field.block_coherence)
    share = None
    if truth is not None:
        t = np.zeros(img.shape, np.float32)
        t[:h0, :w0] = np.asarray(truth, np.float32) > 0.5
        share = cv2.resize(t, size, interpolation=cv2.INTER_AREA)
    return feats, classic, share


def _sample(job: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    from device.fingerprint.errors import FingerprintError
    from training.synth.dataset import identity_seed

    identity, impression, seed = job
    rng = np.random.default_rng([seed, identity, impression, 0x5E6])
    grey, truth = render_with_truth(identity_seed(seed, identity, "fingerprint"), impression, random_profile(rng))
    try:
        return features_and_blocks(grey, truth)
    except FingerprintError:  # blank impression: the device rejects it before segmenting
        return None


def make_samples(identities: int, impressions: int, seed: int, workers: int = 1) -> list:
    jobs = [(i, k, seed) for i in range(identities) for k in range(impressions)]
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            out = pool.map(_sample, jobs, chunksize=impressions)
    else:
        out = [_sample(j) for j in jobs]
    return [s for s in out if s is not None]


def build_model(width: int = 12):
    import keras

    inp = keras.Input((None, None, 4), name="block_features")
    x = inp
    for d in (1, 2, 4, 8):
        x = keras.layers.Conv2D(width, 3, padding="same", dilation_rate=d, activation="relu")(x)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid", name="foreground")(x)
    return keras.Model(inp, out, name="fp_segment")


def _batch(samples: list, rng: np.random.Generator, size: int, crop: tuple[int, int]):
    pool = [s for s in samples if s[0].shape[0] >= crop[0] and s[0].shape[1] >= crop[1]]
    x = np.empty((size, *crop, 4), np.float32)
    y = np.empty((size, *crop, 1), np.float32)
    for n, k in enumerate(rng.integers(len(pool), size=size)):
        f, _, share = pool[k]
        r = int(rng.integers(f.shape[0] - crop[0] + 1))
        c = int(rng.integers(f.shape[1] - crop[1] + 1))
        xs, ys = f[r:r + crop[0], c:c + crop[1]], share[r:r + crop[0], c:c + crop[1]]
        if rng.random() < 0.5:
            xs, ys = xs[:, ::-1], ys[:, ::-1]
        x[n], y[n, ..., 0] = xs, ys
    return x, y


def train_model(samples: list, steps: int, seed: int, batch: int = 16, log=print):
    import keras

    keras.utils.set_random_seed(seed)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(seed)
    crops = [c for c in CROPS if any(s[0].shape[0] >= c[0] and s[0].shape[1] >= c[1] for s in samples)]
    if not crops:
        raise click.ClickException(f"no synthetic print has the {CROPS[0]} blocks a training window needs")
    lr_drop = int(steps * 0.7)
    for step in range(steps):
        if step == lr_drop:
            model.optimizer.learning_rate.assign(1e-3)
        loss = model.train_on_batch(*_batch(samples, rng, batch, crops[step % len(crops)]))
        if step % 250 == 0 or step == steps - 1:
            log(f"step {step}: loss {float(np.asarray(loss).reshape(-1)[0]):.4f}")
    return model


def _interp(blob: bytes):
    from device.inference.litert import interpreter_class

    it = interpreter_class()(model_content=blob, num_threads=1)
    it.allocate_tensors()
    return it


def run_tflite(blob: bytes, feats: np.ndarray) -> np.ndarray:
    """Foreground probabilities of one feature map through a TFLite model (float or int8 input/output)."""
    it = _interp(blob)
    d_in, d_out = it.get_input_details()[0], it.get_output_details()[0]
    it.resize_tensor_input(d_in["index"], [1, *feats.shape], strict=True)
    it.allocate_tensors()
    x = feats[None]
    if d_in["dtype"] == np.int8:
        s, z = d_in["quantization"]
        x = np.clip(np.round(x / s + z), -128, 127).astype(np.int8)
    it.set_tensor(d_in["index"], x)
    it.invoke()
    out = it.get_tensor(d_out["index"])[0, :, :, 0]
    if d_out["dtype"] == np.int8:
        s, z = d_out["quantization"]
        out = (out.astype(np.float32) - z) * s
    return out.astype(np.float32)


def convert(model, representative: list[np.ndarray]) -> tuple[bytes, bytes]:
    """(float32 TFLite, full-int8 TFLite with int8 input and output)."""
    import tensorflow as tf

    flt = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([f[None].astype(np.float32)] for f in representative)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return flt, conv.convert()


def block_metrics(samples: list, probs: list[np.ndarray]) -> dict:
    """Block error rates against the generator's truth: learned (thresholded + cleaned) and classic."""
    from device.fingerprint.segment import clean_blocks

    err_l = err_c = n = 0
    for (_, classic, share), p in zip(samples, probs, strict=True):
        truth = share > 0.5
        err_l += int(np.sum(clean_blocks(p > 0.5) != truth))
        err_c += int(np.sum(classic != truth))
        n += truth.size
    return {"block_error_learned": err_l / n, "block_error_classic": err_c / n, "blocks": n}


def _tflite_tensor(blob: bytes) -> tuple[dict, dict]:
    it = _interp(blob)
    spec = []
    for d in (it.get_input_details()[0], it.get_output_details()[0]):
        s, z = d["quantization"]
        spec.append({"dtype": np.dtype(d["dtype"]).name, "scale": float(s), "zero_point": int(z),
                     "shape_signature": [int(v) for v in d["shape_signature"]]})
    return spec[0], spec[1]


def export(model, train: list, held_out: list, out_dir: Path, command: str, trained_on: str,
           min_agreement: float = MIN_AGREEMENT) -> dict:
    """Convert, check int8 against float on ``held_out``, write the int8 and float32 ``.tflite`` and the card.

    The float32 file (the int8 model's reference, a few KB) ships beside it so a test can check their agreement."""
    from device.fingerprint import params
    from device.fingerprint.learned_segment import CARD_FORMAT, FEATURES_ID
    from device.fingerprint.segment import clean_blocks

    rep = [train[i][0] for i in np.random.default_rng(0).choice(len(train), min(200, len(train)), replace=False)]
    flt, q = convert(model, rep)
    pf = [run_tflite(flt, s[0]) for s in held_out]
    pq = [run_tflite(q, s[0]) for s in held_out]
    agree = float(np.mean(np.concatenate([(clean_blocks(a > 0.5) == clean_blocks(b > 0.5)).ravel()
                                          for a, b in zip(pf, pq, strict=True)])))
    mad = float(np.mean(np.concatenate([np.abs(a - b).ravel() for a, b in zip(pf, pq, strict=True)])))
    if agree < min_agreement:
        raise click.ClickException(f"int8 and float masks agree on {agree:.4f} of held-out blocks (< {min_agreement}):"
                                   " nothing written")
    metrics = {"held_out_images": len(held_out), "int8_float_block_agreement": round(agree, 5),
               "int8_float_mean_abs_prob_diff": round(mad, 5),
               "float": {k: round(v, 5) for k, v in block_metrics(held_out, pf).items()},
               "int8": {k: round(v, 5) for k, v in block_metrics(held_out, pq).items()}}
    t_in, t_out = _tflite_tensor(q)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_name, float_name, card_name = ("fingerprint_segment_int8.tflite", "fingerprint_segment_float.tflite",
                                         "fingerprint_segment.json")
    card = {"format": CARD_FORMAT, "name": "fingerprint-segment", "version": "1.0.0", "file": model_name,
            "sha256": hashlib.sha256(q).hexdigest(), "quantization": "int8-full", "features": FEATURES_ID,
            "float_file": float_name, "float_sha256": hashlib.sha256(flt).hexdigest(),
            "block": params.BLOCK, "input": t_in, "output": t_out, "threshold": 0.5,
            "parameters": int(model.count_params()), "trained_on": trained_on, "command": command,
            "metrics": metrics}
    for name, data in ((model_name, q), (float_name, flt), (card_name, (json.dumps(card, indent=1) + "\n").encode())):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, out_dir / name)
    return card


@click.command("fp-segment")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
              show_default=True, help="Where fingerprint_segment_int8.tflite and fingerprint_segment.json go.")
@click.option("--identities", type=int, default=200, show_default=True, help="Synthetic training fingers.")
@click.option("--impressions", type=int, default=4, show_default=True)
@click.option("--held-out", type=int, default=16, show_default=True, help="Synthetic fingers for the int8 check.")
@click.option("--steps", type=int, default=4000, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Processes rendering synthetic prints.")
def fp_segment(out_dir: Path, identities: int, impressions: int, held_out: int, steps: int, seed: int,
               workers: int) -> None:
    """Train the learned fingerprint segmentation on synthetic prints only and export it as int8 TFLite + card.

    \b
    Example:
      biolock train fp-segment --out models
      biolock eval ../shared/data --set fingerprint/fvc2000 --decision biolock-learnedseg
    """
    t0 = time.time()
    train = make_samples(identities, impressions, seed, workers)
    test = make_samples(held_out, 2, seed + 1, workers)
    click.echo(f"{len(train)} training / {len(test)} held-out synthetic prints in {time.time() - t0:.0f} s")
    model = train_model(train, steps, seed, log=click.echo)
    command = (f"biolock train fp-segment --out {out_dir} --identities {identities} --impressions {impressions} "
               f"--held-out {held_out} --steps {steps} --seed {seed}")
    card = export(model, train, test, out_dir, command,
                  f"{len(train)} synthetic impressions of {identities} fingers (training.synth, random sensor looks)")
    click.echo(json.dumps(card["metrics"], indent=1))
    click.echo(f"wrote {out_dir / card['file']} and its card in {time.time() - t0:.0f} s")
