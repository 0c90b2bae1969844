"""Which inference runtime / delegate / provider, GPIO backend and camera backend this board would use.

Why a module of its own: on a Jetson the PyPI builds of onnxruntime (CPU only) and OpenCV (no GStreamer) install
and import fine, and a Pi 5 with gpiozero but neither lgpio nor RPi.GPIO silently falls back to a backend that
cannot drive its GPIO. ``biolock status`` prints these lines so the operator sees what is in use, not what was
hoped for (docs/boards.md). Nothing here opens a model, a GPIO chip or a camera: detection only imports the
packages and asks them what they offer, so status stays quick and safe to run beside the daemon.
Every function takes its probes as arguments (defaults: the real ones) so the tests need no hardware.
"""

from __future__ import annotations

import ctypes.util
import glob
import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any

Importer = Callable[[str], Any]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _try_import(name: str, importer: Importer) -> Any | None:
    try:
        return importer(name)
    except Exception:  # noqa: BLE001 - a broken native wheel raises OSError, not ImportError: "not usable" either way
        return None


def inference_backend(kind: str, num_threads: int, *, importer: Importer = importlib.import_module,
                      version: Callable[[str], str | None] = _version,
                      find_library: Callable[[str], str | None] = ctypes.util.find_library) -> str:
    """One line: runtime, version and the delegate / execution provider a session would get."""
    if kind in ("litert", "edgetpu"):
        if _try_import("ai_edge_litert.interpreter", importer) is not None:
            runtime = f"LiteRT (ai-edge-litert {version('ai-edge-litert') or '?'})"
        elif _try_import("tflite_runtime.interpreter", importer) is not None:
            runtime = f"LiteRT (tflite-runtime {version('tflite-runtime') or '?'})"
        else:
            return "none: neither ai-edge-litert nor tflite-runtime imports (pip install '.[device]')"
        if kind == "edgetpu":
            lib = find_library("edgetpu")
            where = f"found {lib}" if lib else "libedgetpu.so.1 NOT found (install the Edge TPU runtime)"
            return f"{runtime}, Edge TPU delegate ({where}), {num_threads} CPU thread(s)"
        return f"{runtime}, CPU with the default XNNPACK delegate, {num_threads} thread(s)"
    if kind == "onnx":
        ort = _try_import("onnxruntime", importer)
        if ort is None:
            return "none: onnxruntime does not import (pip install '.[jetson]', or JetPack's onnxruntime-gpu)"
        from device.inference.onnx_backend import PREFERRED

        available = list(ort.get_available_providers())
        usable = [p for p in PREFERRED if p in available]
        dist = next((d for d in ("onnxruntime-gpu", "onnxruntime") if version(d)), "onnxruntime")
        first = usable[0] if usable else "none of " + ", ".join(PREFERRED)
        cpu_only = usable == ["CPUExecutionProvider"]
        note = " (CPU only: on a Jetson install JetPack's onnxruntime-gpu)" if cpu_only else ""
        return f"onnxruntime ({dist} {version(dist) or getattr(ort, '__version__', '?')}), provider {first}" \
               f"{note}; available: {', '.join(available) or 'none'}"
    return f"unknown inference.type {kind!r}"


# gpiozero 2.x tries these pin factories in this order when GPIOZERO_PIN_FACTORY is unset
GPIOZERO_ORDER = (("lgpio", "lgpio"), ("rpigpio", "RPi.GPIO"), ("pigpio", "pigpio"))


def _find_spec(name: str) -> Any | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def gpio_backend(backend: str, chip: str, *, importer: Importer = importlib.import_module,
                 version: Callable[[str], str | None] = _version, environ: dict[str, str] | None = None,
                 chips: list[str] | None = None, find_spec: Callable[[str], Any | None] = _find_spec) -> str:
    """One line: the configured GPIO backend and the library / pin factory / chip it would use."""
    env = os.environ if environ is None else environ
    if backend == "none":
        # found, not imported: importing lgpio creates its notification pipe in the working directory
        have = [n for n in ("gpiod", "lgpio") if find_spec(n) is not None]
        return f"none (unlock.gpio.backend = none){'; installed: ' + ', '.join(have) if have else ''}"
    if backend == "gpiozero":
        if _try_import("gpiozero", importer) is None:
            return "gpiozero: NOT installed (pip install '.[pi]')"
        forced = env.get("GPIOZERO_PIN_FACTORY")
        if forced:
            return f"gpiozero {version('gpiozero') or '?'}, pin factory {forced} (GPIOZERO_PIN_FACTORY)"
        for factory, module in GPIOZERO_ORDER:
            if _try_import(module, importer) is not None:
                return f"gpiozero {version('gpiozero') or '?'}, pin factory {factory}"
        return (f"gpiozero {version('gpiozero') or '?'}, pin factory native (no lgpio / RPi.GPIO / pigpio: "
                "cannot drive a Pi 5; pip install '.[pi]')")
    if backend == "gpiod":
        if _try_import("gpiod", importer) is None:
            return "gpiod: NOT installed (pip install '.[pi]' or '.[jetson]')"
        found = sorted(glob.glob("/dev/gpiochip*")) if chips is None else chips
        return f"gpiod {version('gpiod') or '?'} (libgpiod v2), chip {chip}; present: {', '.join(found) or 'none'}"
    return f"unknown unlock.gpio.backend {backend!r}"


def opencv_video_io(build_info: str) -> dict[str, bool]:
    """Which video back-ends an OpenCV build has, from ``cv2.getBuildInformation()``'s Video I/O section."""
    out = {}
    for name, label in (("gstreamer", "GStreamer"), ("v4l2", "v4l/v4l2"), ("ffmpeg", "FFMPEG")):
        m = re.search(rf"^\s*{re.escape(label)}:\s*(\S+)", build_info, re.M | re.I)
        out[name] = bool(m) and m.group(1).upper() not in ("NO", "OFF")
    return out


def camera_backend(sensor_types: list[str], sources: list[str], *, importer: Importer = importlib.import_module,
                   version: Callable[[str], str | None] = _version) -> str:
    """One line: the OpenCV build, its video back-ends, and the VideoCapture API a configured camera opens with."""
    cv2 = _try_import("cv2", importer)
    if cv2 is None:
        return "none: OpenCV does not import (pip install '.[device]', or JetPack's OpenCV)"
    dist = next((d for d in ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless")
                 if version(d)), None)
    build = f"OpenCV {cv2.__version__} ({dist or 'system build, not from pip'})"
    io = opencv_video_io(cv2.getBuildInformation())
    has = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in io.items())
    cams = [s for t, s in zip(sensor_types, sources, strict=True) if t == "camera"]
    if not cams:
        return f"not used (sensor {'+'.join(sensor_types)}); {build}: {has}"
    from device.sensors.camera import parse_source

    kinds = [parse_source(s)[0] for s in cams]
    api = {"v4l2-index": "CAP_V4L2", "v4l2-path": "CAP_V4L2", "gstreamer": "CAP_GSTREAMER"}
    parts = [f"{k} via {api.get(k, 'CAP_ANY')}" for k in kinds]
    warn = ""
    if "gstreamer" in kinds and not io["gstreamer"]:
        warn = " -- this OpenCV has NO GStreamer: the pipeline cannot open (on Jetson use JetPack's OpenCV)"
    return f"{', '.join(parts)}; {build}: {has}{warn}"


def backend_lines(cfg: Any) -> dict[str, str]:
    """The three status lines for a loaded Config (``inference``, ``gpio``, ``camera``)."""
    sensors = [cfg.sensor] + ([cfg.sensor_vein] if getattr(cfg, "sensor_vein", None) is not None else [])
    return {
        "inference": inference_backend(cfg.inference.type, cfg.inference.num_threads),
        "gpio": gpio_backend(cfg.unlock.gpio.backend, cfg.unlock.gpio.chip),
        "camera": camera_backend([s.type for s in sensors], [s.source for s in sensors]),
    }
