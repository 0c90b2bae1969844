"""The NIR camera backend replaying an MJPG .avi written with cv2.VideoWriter; black frames and no frames."""

import cv2
import numpy as np
import pytest

from device.sensors.base import BadFrameError, NoFingerError, ReplayExhaustedError, SensorUnavailableError
from device.sensors.camera import CameraSensor, finger_present, is_black, parse_source, sharpness, to_grey

W, H = 320, 240


def vein_frame(seed: int, blur: int) -> np.ndarray:
    """A finger-vein-like NIR frame: a lit finger band with dark branching veins, blurred by ``blur``."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W), 235, np.float32)  # bare NIR light around the finger
    img[60:180, :] = 150
    for _ in range(6):
        y = rng.uniform(80, 160)
        pts = [(int(x), int(y + 12 * np.sin(x / rng.uniform(25, 60)))) for x in range(0, W, 8)]
        cv2.polylines(img, [np.array(pts, np.int32)], False, 70, thickness=int(rng.integers(2, 5)))
    img += rng.normal(0, 3, img.shape)
    if blur > 1:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_avi(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (W, H))
    assert writer.isOpened()
    for grey in frames:
        writer.write(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_source_kinds():
    assert parse_source("0") == ("v4l2-index", 0)
    assert parse_source("/dev/video2") == ("v4l2-path", "/dev/video2")
    assert parse_source("nvarguscamerasrc ! appsink")[0] == "gstreamer"
    assert parse_source("clip.avi") == ("file", "clip.avi")


def test_burst_picks_the_sharpest_finger_frame_in_grey(tmp_path):
    empty = np.full((H, W), 240, np.uint8)
    blurs = [6, 4, 0, 3, 5]
    frames = [empty, empty] + [vein_frame(1, b) for b in blurs] + [empty]
    avi = write_avi(tmp_path / "veins.avi", frames)
    with CameraSensor(str(avi), burst=5) as cam:
        frame = cam.capture(timeout_s=5)
    assert frame.image.ndim == 2 and frame.image.dtype == np.uint8 and frame.image.shape == (H, W)
    scores = [sharpness(to_grey(f)) for f in frames[2:7]]
    # the chosen frame is the decoded twin of the unblurred one (MJPG is lossy: compare by nearest)
    diffs = [np.abs(frame.image.astype(int) - f.astype(int)).mean() for f in frames[2:7]]
    assert int(np.argmin(diffs)) == blurs.index(0) == int(np.argmax(scores))


def test_burst_ends_when_the_finger_leaves(tmp_path):
    empty = np.full((H, W), 240, np.uint8)
    avi = write_avi(tmp_path / "short.avi", [vein_frame(2, 2), vein_frame(2, 0), empty, vein_frame(3, 0)])
    with CameraSensor(str(avi), burst=10) as cam:
        first = cam.capture(timeout_s=5)
        second = cam.capture(timeout_s=5)
    assert not np.array_equal(first.image, second.image)


def test_black_frames_are_rejected_with_a_reason(tmp_path):
    avi = write_avi(tmp_path / "black.avi", [np.zeros((H, W), np.uint8)] * 6)
    with CameraSensor(str(avi), burst=3) as cam, pytest.raises(BadFrameError, match="black"):
        cam.capture(timeout_s=5)


def test_no_finger_then_file_runs_out(tmp_path):
    avi = write_avi(tmp_path / "empty.avi", [np.full((H, W), 240, np.uint8)] * 4)
    with CameraSensor(str(avi), burst=3) as cam:
        with pytest.raises(NoFingerError):
            cam.capture(timeout_s=0.0)
        with pytest.raises(ReplayExhaustedError):
            cam.capture(timeout_s=5)


class DeadCamera:
    """A capture device that opened but returns no frame (unplugged USB camera)."""

    def __init__(self, *args):
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        return False, None

    def set(self, *args):
        return False

    def release(self):
        self.released = True


def test_live_camera_without_frames_is_unavailable_and_closes():
    cam = CameraSensor("0", capture_factory=DeadCamera)
    cam.open()
    with pytest.raises(SensorUnavailableError, match="no frame"):
        cam.capture(timeout_s=1)
    assert cam._cap is None  # closed, so the daemon's re-open starts fresh


def test_missing_sources_are_unavailable(tmp_path):
    with pytest.raises(SensorUnavailableError, match="neither"):
        CameraSensor(str(tmp_path / "nothing.avi")).open()
    (tmp_path / "junk.avi").write_bytes(b"not a video")
    with pytest.raises(SensorUnavailableError, match="cannot open"):
        CameraSensor(str(tmp_path / "junk.avi")).open()


def test_frame_classifiers():
    assert is_black(np.zeros((10, 10), np.uint8))
    assert not finger_present(np.full((10, 10), 128, np.uint8))  # no texture
    assert finger_present(vein_frame(4, 0))
    assert to_grey(np.zeros((4, 4), np.uint16) + 0x8000).max() == 0x80


class RecordingCamera(DeadCamera):
    """A V4L2 camera that records the properties set on it and accepts a manual exposure."""

    def __init__(self, *args):
        super().__init__(*args)
        self.args = args
        self.props = {}

    def set(self, prop, value):
        self.props[prop] = value
        return True


def test_live_camera_gets_a_fixed_exposure():
    cams = []

    def factory(*args):
        cams.append(RecordingCamera(*args))
        return cams[-1]

    cam = CameraSensor("/dev/video3", exposure=120, capture_factory=factory)
    cam.open()
    assert cams[0].args == ("/dev/video3", cv2.CAP_V4L2)
    assert cams[0].props == {cv2.CAP_PROP_AUTO_EXPOSURE: 1, cv2.CAP_PROP_EXPOSURE: 120.0}
    cam.close()
    assert cams[0].released
