"""Time preprocessing per image and report quality pass rates: ``python -m training.data.bench [PATH]``.

Why a script and not a test: timings depend on the machine and its load, so they are printed for docs/data.md,
never asserted. Without PATH it times built-in synthetic images of the device's sizes (R307 256x288
fingerprint, 100x300 vein ROI, 320x240 and 640x480 camera frames); with PATH (any layout ``load_dataset``
reads) it also preprocesses every image there and prints the pass rate per sensor subset.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from device.preprocess import preprocess


def synthetic_fingerprint(h: int = 288, w: int = 256) -> np.ndarray:
    """Concentric ridges in an ellipse (period 9 px, as at 500 dpi) on a light background."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ridges = 128 + 90 * np.sin(2 * np.pi * np.hypot(yy - h / 2, xx - w / 2) / 9.0)
    inside = ((yy - h / 2) / (0.42 * h)) ** 2 + ((xx - w / 2) / (0.37 * w)) ** 2 <= 1
    noise = np.random.default_rng(0).normal(0, 6, (h, w))
    return np.clip(np.where(inside, ridges, 215) + noise, 0, 255).astype(np.uint8)


def synthetic_vein_frame(h: int = 240, w: int = 320, angle: float = 8.0) -> np.ndarray:
    """A bright tilted finger with dark veins on a dark background (a raw NIR camera frame)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    half = 0.2 * h
    img = 15 + 170 * np.sqrt(np.clip(1 - ((yy - h / 2) / half) ** 2, 0, 1)) * (xx < 0.9 * w)
    for k in range(4):
        img -= 40 * np.exp(-(((yy - h / 2 - (k - 1.5) * 0.25 * half - 6 * np.sin(xx / 40 + k)) / 3) ** 2)) * (img > 30)
    img = np.clip(img + np.random.default_rng(1).normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    return cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h), borderValue=15)


def synthetic_vein_roi() -> np.ndarray:
    """A 100x300 portrait ROI crop (FV-USM style) with faint veins."""
    frame = synthetic_vein_frame(300, 400, 0.0)
    return cv2.rotate(np.ascontiguousarray(frame[100:200, 20:320]), cv2.ROTATE_90_CLOCKWISE)


def time_one(image: np.ndarray, modality: str, repeats: int) -> dict[str, float]:
    """Wall-clock and this thread's CPU time per call (CPU time is what a quiet machine would show: on a shared
    one the wall clock also counts time spent waiting for a core)."""
    preprocess(image, modality)  # warm-up (first call allocates)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        preprocess(image, modality)
        cpu.append((time.thread_time() - start_cpu) * 1000.0)
        wall.append((time.perf_counter() - start) * 1000.0)
    wall.sort()
    return {
        "median_ms": wall[len(wall) // 2],
        "p90_ms": wall[math.ceil(0.9 * len(wall)) - 1],
        "min_ms": wall[0],
        "cpu_median_ms": float(np.median(cpu)),
    }


def bench_synthetic(repeats: int) -> dict[str, dict[str, float]]:
    cases = {
        "fingerprint 256x288 (R307)": (synthetic_fingerprint(), "fingerprint"),
        "fingerprint 300x300 (FVC2000 DB1)": (synthetic_fingerprint(300, 300), "fingerprint"),
        "vein ROI 100x300": (synthetic_vein_roi(), "vein"),
        "vein frame 320x240": (synthetic_vein_frame(), "vein"),
        "vein frame 640x480": (synthetic_vein_frame(480, 640), "vein"),
    }
    return {name: time_one(image, modality, repeats) for name, (image, modality) in cases.items()}


def bench_dataset(path: Path) -> dict[str, dict]:
    """Preprocess every image under ``path``; pass rate, reasons and median time per sensor subset."""
    from device.imageio import read_image
    from device.progress import tqdm
    from training.data.loaders import load_dataset

    out: dict[str, dict] = {}
    index = load_dataset(path)
    for name, part in index.subsets().items():
        modality = "vein" if "vein" in name.lower() else "fingerprint"
        reasons: Counter = Counter()
        times, scores = [], []
        for sample in tqdm(part.samples, desc=name, leave=False):
            image = read_image(sample.path)
            start = time.perf_counter()
            result = preprocess(image, modality)
            times.append((time.perf_counter() - start) * 1000.0)
            scores.append(result.quality.score)
            reasons[(result.quality.reason or "ok").split(":")[0].split(";")[0].split(" (")[0]] += 1
        out[name] = {
            "modality": modality,
            "images": len(times),
            "pass_rate": reasons["ok"] / max(len(times), 1),
            "reasons": dict(reasons.most_common()),
            "score_p5": float(np.percentile(scores, 5)) if scores else 0.0,
            "median_ms": float(np.median(times)) if times else 0.0,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, help="dataset to preprocess (optional)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (the device default is 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)
    report: dict[str, object] = {"opencv_threads": args.threads, "synthetic": bench_synthetic(args.repeats)}
    if args.path:
        report["dataset"] = bench_dataset(args.path)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"OpenCV threads: {args.threads}")
    for name, t in report["synthetic"].items():  # type: ignore[union-attr]
        print(
            f"{name:34s} wall median {t['median_ms']:6.2f} ms  p90 {t['p90_ms']:6.2f}  min {t['min_ms']:6.2f}  "
            f"| CPU median {t['cpu_median_ms']:6.2f} ms"
        )
    for name, d in report.get("dataset", {}).items():  # type: ignore[union-attr]
        print(
            f"{name:36s} {d['images']:5d} images  pass {d['pass_rate']:.1%}  score p5 {d['score_p5']:.2f}  "
            f"median {d['median_ms']:.2f} ms  {d['reasons']}"
        )


if __name__ == "__main__":
    main()
