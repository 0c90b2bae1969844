"""The status lines that say which inference runtime, GPIO backend and camera backend are in use (issue 20).

Fakes stand in for the packages (an importer that knows only some modules) so each board's situation is tested on
any machine: a Pi 5 without lgpio, a Jetson with PyPI's CPU-only onnxruntime or JetPack's GPU build, OpenCV with or
without GStreamer.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from device.platform_info import camera_backend, gpio_backend, inference_backend, opencv_video_io


def importer_of(**modules):
    def imp(name):
        if name in modules:
            if isinstance(modules[name], Exception):
                raise modules[name]
            return modules[name]
        raise ImportError(name)
    return imp


VERSIONS = {"ai-edge-litert": "2.3.0", "tflite-runtime": "2.14.0", "onnxruntime": "1.20.0", "onnxruntime-gpu": None,
            "gpiozero": "2.0.1", "gpiod": "2.5.0", "opencv-python-headless": "4.10.0.84"}


def version(dist):
    return VERSIONS.get(dist)


def test_litert_names_package_and_delegate():
    line = inference_backend("litert", 2, importer=importer_of(**{"ai_edge_litert.interpreter": object()}),
                             version=version)
    assert line == "LiteRT (ai-edge-litert 2.3.0), CPU with the default XNNPACK delegate, 2 thread(s)"
    legacy = inference_backend("litert", 1, importer=importer_of(**{"tflite_runtime.interpreter": object()}),
                               version=version)
    assert "tflite-runtime 2.14.0" in legacy


def test_no_runtime_and_a_broken_native_wheel_say_so():
    assert inference_backend("litert", 1, importer=importer_of(), version=version).startswith("none:")
    broken = importer_of(**{"ai_edge_litert.interpreter": OSError("GLIBC_2.38 not found")})
    assert inference_backend("litert", 1, importer=broken, version=version).startswith("none:")


def test_edgetpu_reports_whether_the_delegate_library_is_there():
    imp = importer_of(**{"ai_edge_litert.interpreter": object()})
    assert "NOT found" in inference_backend("edgetpu", 1, importer=imp, version=version, find_library=lambda n: None)
    assert "found libedgetpu.so.1" in inference_backend("edgetpu", 1, importer=imp, version=version,
                                                        find_library=lambda n: "libedgetpu.so.1")


def test_onnx_on_a_jetson_with_pypi_onnxruntime_warns_cpu_only():
    ort = SimpleNamespace(get_available_providers=lambda: ["CPUExecutionProvider"], __version__="1.20.0")
    line = inference_backend("onnx", 1, importer=importer_of(onnxruntime=ort), version=version)
    assert "provider CPUExecutionProvider" in line and "CPU only" in line


def test_onnx_with_jetpack_build_prefers_tensorrt():
    ort = SimpleNamespace(get_available_providers=lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                           "CPUExecutionProvider"])
    line = inference_backend("onnx", 1, importer=importer_of(onnxruntime=ort),
                             version=lambda d: "1.19.0" if d == "onnxruntime-gpu" else None)
    assert line.startswith("onnxruntime (onnxruntime-gpu 1.19.0), provider TensorrtExecutionProvider;")
    assert "CPU only" not in line


def test_gpiozero_pin_factory_order_and_pi5_fallback():
    gz = object()
    assert gpio_backend("gpiozero", "gpiochip0", importer=importer_of(gpiozero=gz, lgpio=object()), version=version,
                        environ={}).endswith("pin factory lgpio")
    assert gpio_backend("gpiozero", "gpiochip0", importer=importer_of(gpiozero=gz, **{"RPi.GPIO": object()}),
                        version=version, environ={}).endswith("pin factory rpigpio")
    native = gpio_backend("gpiozero", "gpiochip0", importer=importer_of(gpiozero=gz), version=version, environ={})
    assert "pin factory native" in native and "Pi 5" in native
    forced = gpio_backend("gpiozero", "x", importer=importer_of(gpiozero=gz, lgpio=object()), version=version,
                          environ={"GPIOZERO_PIN_FACTORY": "mock"})
    assert forced.endswith("pin factory mock (GPIOZERO_PIN_FACTORY)")


def test_gpiod_and_missing_packages():
    line = gpio_backend("gpiod", "gpiochip4", importer=importer_of(gpiod=object()), version=version,
                        chips=["/dev/gpiochip0", "/dev/gpiochip4"])
    assert line == "gpiod 2.5.0 (libgpiod v2), chip gpiochip4; present: /dev/gpiochip0, /dev/gpiochip4"
    assert "NOT installed" in gpio_backend("gpiod", "gpiochip0", importer=importer_of(), version=version, chips=[])
    assert "NOT installed" in gpio_backend("gpiozero", "gpiochip0", importer=importer_of(), version=version)
    imported = []
    line = gpio_backend("none", "gpiochip0", importer=lambda n: imported.append(n), version=version,
                        find_spec=lambda n: object() if n == "gpiod" else None)
    assert line == "none (unlock.gpio.backend = none); installed: gpiod"
    assert imported == []  # nothing imported (lgpio's import writes a pipe into the working directory)


BUILD_NO_GST = """
  Video I/O:
    DC1394:                      NO
    FFMPEG:                      YES
      avcodec:                   YES (59.37.100)
    GStreamer:                   NO
    v4l/v4l2:                    YES (linux/videodev2.h)
"""
BUILD_GST = BUILD_NO_GST.replace("GStreamer:                   NO", "GStreamer:                   YES (1.20.3)")


def test_opencv_build_information_parsing():
    assert opencv_video_io(BUILD_NO_GST) == {"gstreamer": False, "v4l2": True, "ffmpeg": True}
    assert opencv_video_io(BUILD_GST)["gstreamer"] is True
    assert opencv_video_io("") == {"gstreamer": False, "v4l2": False, "ffmpeg": False}


@pytest.mark.parametrize(("build", "warns"), [(BUILD_NO_GST, True), (BUILD_GST, False)])
def test_camera_gstreamer_pipeline_needs_gstreamer(build, warns):
    cv2 = SimpleNamespace(__version__="4.8.0", getBuildInformation=lambda: build)
    line = camera_backend(["camera"], ["nvarguscamerasrc ! appsink"], importer=importer_of(cv2=cv2),
                          version=lambda d: None)
    assert line.startswith("gstreamer via CAP_GSTREAMER; OpenCV 4.8.0 (system build, not from pip)")
    assert ("NO GStreamer" in line) is warns


def test_camera_not_configured_and_v4l2():
    cv2 = SimpleNamespace(__version__="4.10.0", getBuildInformation=lambda: BUILD_NO_GST)
    imp = importer_of(cv2=cv2)
    assert camera_backend(["r30x"], ["0"], importer=imp, version=version).startswith("not used (sensor r30x)")
    assert camera_backend(["r30x", "camera"], ["0", "/dev/video0"], importer=imp, version=version).startswith(
        "v4l2-path via CAP_V4L2; OpenCV 4.10.0 (opencv-python-headless)")
    assert camera_backend(["camera"], ["0"], importer=importer_of(), version=version).startswith("none:")


def test_status_prints_the_three_backend_lines(tmp_path):
    from click.testing import CliRunner

    from device.cli import main

    res = CliRunner().invoke(main, ["--state-dir", str(tmp_path), "status"])
    assert res.exit_code == 0, res.output
    lines = {ln.split(":", 1)[0] for ln in res.output.splitlines()}
    assert {"inference", "gpio", "camera"} <= lines
