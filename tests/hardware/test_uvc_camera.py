"""The UVC camera driver against a small generated MJPG video standing in for the camera: what it
grants, frames (size, channel order, order of content), looping, a missing device, losing the camera
and getting it back, config and intrinsics validation. The reconnect clock is a fake one, so nothing
waits. tests/ros/scenario_uvc_camera_node.py runs the node."""

from __future__ import annotations

from pathlib import Path

import pytest
from indexed_video import FPS, HEIGHT, WIDTH, IndexedVideo

from hardware.uvc_camera import CameraIntrinsics, CameraUnavailable, UvcCamera, UvcCameraConfig
from robot_rl.sim.config import ConfigError

VIDEO = IndexedVideo(n_frames=6)
N_FRAMES = VIDEO.n_frames


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return VIDEO.write(tmp_path / "camera.avi")


def make_camera(device: Path | str, **overrides) -> tuple[UvcCamera, list[tuple[str, str]], FakeClock]:
    events: list[tuple[str, str]] = []
    clock = FakeClock()
    config = UvcCameraConfig(device=str(device), width=WIDTH, height=HEIGHT, fps=FPS, reconnect_period_s=0.5)
    for name, value in overrides.items():
        setattr(config, name, value)
    camera = UvcCamera(config, on_event=lambda kind, message: events.append((kind, message)), clock=clock)
    return camera, events, clock


def kinds(events: list[tuple[str, str]]) -> list[str]:
    return [kind for kind, _ in events]


def test_open_reports_what_was_granted_and_frames_come_in_order(video):
    camera, events, _ = make_camera(video)
    granted = camera.open()
    assert (granted.width, granted.height, granted.fps, granted.fourcc) == (WIDTH, HEIGHT, FPS, "MJPG")
    assert granted.mismatches == ()
    assert events == [("opened", f"camera {video} open: 80x48 at 20 fps MJPG")]
    assert [VIDEO.index(camera.read()) for _ in range(N_FRAMES)] == list(range(N_FRAMES))
    assert camera.counters.frames == N_FRAMES and camera.counters.failed_reads == 0


def test_a_file_loops_without_counting_as_lost(video):
    camera, events, _ = make_camera(video)
    camera.open()
    indices = [VIDEO.index(camera.read()) for _ in range(2 * N_FRAMES + 2)]
    assert indices == [*range(N_FRAMES), *range(N_FRAMES), 0, 1]
    assert (camera.counters.frames, camera.counters.failed_reads, camera.counters.reconnects) == (14, 0, 0)
    assert kinds(events) == ["opened"] and camera.is_open


def test_a_mismatch_is_reported(video):
    camera, events, _ = make_camera(video, width=64, height=64, fps=30.0, exposure=5.0)
    granted = camera.open()
    assert (granted.width, granted.height) == (WIDTH, HEIGHT)  # what the device gives, not what was asked
    assert granted.mismatches == (
        "64x64 asked, 80x48 granted",
        "30 fps asked, 20 granted",
        "exposure 5 asked: a video file has no exposure control",
    )
    assert events[1] == ("mismatch", f"camera {video} did not grant the config: " + "; ".join(granted.mismatches))
    assert camera.read().shape == (HEIGHT, WIDTH, 3)  # published as granted


@pytest.mark.parametrize("device, kind", [("missing.avi", "video file"), ("/dev/video-does-not-exist", "device")])
def test_a_missing_device_is_an_error_at_open_and_a_lost_state_in_read(tmp_path, device, kind):
    path = device if device.startswith("/dev/") else tmp_path / device
    camera, events, clock = make_camera(path)
    with pytest.raises(CameraUnavailable, match=f"^camera {path}: no such {kind}$"):
        camera.open()
    assert camera.read() is None and not camera.is_open  # no retry before the period
    clock.now += 0.5
    assert camera.read() is None
    assert events == [("retry_failed", f"camera {path}: no such {kind}")]
    assert camera.lost_for_s == pytest.approx(0.5)
    assert camera.counters.frames == 0 and camera.counters.reconnects == 0


def test_a_camera_absent_at_start_is_picked_up_when_it_appears(tmp_path):
    path = tmp_path / "late.avi"
    camera, events, clock = make_camera(path)
    with pytest.raises(CameraUnavailable):
        camera.open()
    VIDEO.write(path)
    clock.now += 1.25
    assert VIDEO.index(camera.read()) == 0
    assert events[-1] == ("back", f"camera {path} back after 1.2 s")
    assert camera.counters.reconnects == 1 and camera.lost_for_s is None


def test_lost_when_the_file_goes_and_back_when_it_returns(video, tmp_path):
    camera, events, clock = make_camera(video)
    camera.open()
    assert VIDEO.index(camera.read()) == 0
    away = video.rename(tmp_path / "unplugged.avi")
    frames = [camera.read() for _ in range(N_FRAMES)]  # the open file plays to its end, then it is gone
    assert frames[-1] is None and all(frame is not None for frame in frames[:-1])
    assert events[-1] == ("lost", f"camera {video} lost (no frame from the device); retrying every 0.5 s")
    assert camera.counters.failed_reads == 1 and not camera.is_open

    clock.now += 0.25
    assert camera.read() is None and kinds(events).count("retry_failed") == 0  # not due yet
    clock.now += 0.25
    assert camera.read() is None and events[-1] == ("retry_failed", f"camera {video}: no such video file")

    away.rename(video)
    assert camera.read() is None  # the next attempt is a period after the failed one
    clock.now += 0.5
    assert VIDEO.index(camera.read()) == 0
    assert events[-2:] == [
        ("opened", f"camera {video} open: 80x48 at 20 fps MJPG"),
        ("back", f"camera {video} back after 1.0 s"),
    ]
    assert VIDEO.index(camera.read()) == 1
    counters = camera.counters
    assert (counters.frames, counters.failed_reads, counters.reconnects) == (1 + (N_FRAMES - 1) + 2, 1, 1)
    camera.close()
    assert not camera.is_open


def test_a_file_that_is_not_a_video_is_lost_not_raised(tmp_path):
    path = tmp_path / "notes.avi"
    path.write_text("not a video")
    camera, events, clock = make_camera(path)
    with pytest.raises(CameraUnavailable, match="OpenCV cannot open it"):
        camera.open()
    clock.now += 0.5
    assert camera.read() is None and kinds(events) == ["retry_failed"]


def test_device_sources():
    assert UvcCameraConfig(device="2").source() == 2
    assert UvcCameraConfig(device=1).source() == 1
    assert not UvcCameraConfig(device="/dev/video0").is_file()
    assert not UvcCameraConfig(device="/dev/v4l/by-id/usb-Logitech_C920-video-index0").is_file()
    assert UvcCameraConfig(device="demo/cell.mp4").is_file()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("device", "", "camera.device: is empty"),
        ("device", -1, "camera.device: an index must be >= 0, got -1"),
        ("width", 0, r"camera.width: must be in \[1, 16384\] pixels, got 0"),
        ("height", -480, r"camera.height: must be in \[1, 16384\] pixels, got -480"),
        ("fps", 0.0, r"camera.fps: must be in \(0, 1000\], got 0.0"),
        ("fps", float("nan"), "camera.fps: must be in"),
        ("exposure", float("inf"), r"camera.exposure: must be a number or null \(auto\), got inf"),
        ("fourcc", "MJPEG", 'camera.fourcc: must be 4 characters such as "MJPG"'),
        ("reconnect_period_s", 0.0, "camera.reconnect_period_s: must be > 0, got 0.0"),
        ("frame_id", "", "camera.frame_id: is empty"),
    ],
)
def test_bad_config_is_rejected(field, value, message):
    config = UvcCameraConfig()
    setattr(config, field, value)
    with pytest.raises(ConfigError, match=message):
        config.validate()
    with pytest.raises(ConfigError, match=message):
        UvcCamera(config)  # the driver does not start on a bad config


def test_intrinsics():
    k = (500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0)
    CameraIntrinsics(k=k, d=(0.1, -0.2, 0.0, 0.0, 0.05)).validate()
    assert CameraIntrinsics(k=k).projection() == (500.0, 0.0, 320.0, 0.0, 0.0, 510.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert CameraIntrinsics().projection() == (0.0,) * 12
    bad = [
        (CameraIntrinsics(k=k[:8]), "intrinsics.k: needs 9 numbers"),
        (CameraIntrinsics(d=(0.1,) * 5), "intrinsics.d: given without k"),
        (CameraIntrinsics(k=(0.0,) * 9), "intrinsics.k: focal lengths"),
        (CameraIntrinsics(k=k, d=(0.1,) * 4), "intrinsics.d: plumb_bob needs 5 coefficients, got 4"),
        (CameraIntrinsics(k=k, d=(0.1,) * 4, distortion_model="fisheye"), "intrinsics.distortion_model: unknown"),
        (CameraIntrinsics(k=(float("nan"),) + k[1:]), "intrinsics: k and d must be finite"),
    ]
    for intrinsics, message in bad:
        with pytest.raises(ConfigError, match=message):
            intrinsics.validate()
