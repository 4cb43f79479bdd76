"""A UVC (USB video class) camera read through OpenCV, as the camera driver of a real cell: the
`device` is a V4L2 device (/dev/video0, or better a stable /dev/v4l/by-id/... link), an OpenCV
camera index, or a video file, which stands in for a camera in tests and demos and loops when it
ends. No ROS here: hardware/uvc_camera_node.py publishes what `UvcCamera.read()` returns.

A camera grants what it can, not what was asked: `open()` applies the config through
cv2.VideoCapture properties, reads back what the device took and returns it as a GrantedSettings,
each difference named in `mismatches` and reported (a 1280x720 request answered with 640x480 is a
warning, never a silent surprise downstream). Frames are published as granted, not resized.

USB cameras drop off the bus (a loose cable, a hub's power, a driver reset). A read that fails
releases the capture and reports "camera <device> lost"; each later read() tries to open it again
once every `reconnect_period_s` and returns None meanwhile, until "camera <device> back after X s".
read() never raises for a camera that is missing or failing: the node that calls it keeps running.
A camera absent at open() is in that same lost state, so plugging it in later is enough.

Events go to `on_event(kind, message)` (the node logs them; by default Python's logging), kind one
of EVENT_LEVELS' keys: "opened" (what was granted), "mismatch", "lost", "retry_failed" (one failed
attempt to reopen, with why), "back".
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from robot_rl.sim.config import ConfigError

log = logging.getLogger(__name__)
EVENT_LEVELS = {
    "opened": logging.INFO,
    "mismatch": logging.WARNING,
    "lost": logging.WARNING,
    "retry_failed": logging.DEBUG,
    "back": logging.INFO,
}
FPS_TOLERANCE = 0.01  # relative: cameras report 29.97 or 30.00003 for 30
# V4L2's exposure_auto menu (OpenCV's V4L2 backend passes the value through): 1 manual, 3 aperture
# priority, the automatic mode UVC cameras offer
V4L2_EXPOSURE_MANUAL, V4L2_EXPOSURE_AUTO = 1.0, 3.0
DISTORTION_COEFFICIENTS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


@dataclass
class UvcCameraConfig:
    device: str | int = "/dev/video0"  # a /dev path, an OpenCV index (also as a string: "0"), or a video file
    width: int = 640
    height: int = 480
    fps: float = 30.0
    exposure: float | None = None  # None: auto exposure; else CAP_PROP_EXPOSURE's value (device units)
    fourcc: str = ""  # e.g. "MJPG" (what USB 2 needs for 720p at 30 fps); "": the device's default
    reconnect_period_s: float = 1.0
    frame_id: str = "camera"

    def validate(self, key: str = "camera") -> None:
        if isinstance(self.device, str):
            _check(self.device.strip() != "", f"{key}.device", "is empty; give /dev/videoN, an index or a video file")
        else:
            _check(self.device >= 0, f"{key}.device", f"an index must be >= 0, got {self.device}")
        for name in ("width", "height"):
            value = getattr(self, name)
            _check(0 < value <= 16384, f"{key}.{name}", f"must be in [1, 16384] pixels, got {value}")
        _check(math.isfinite(self.fps) and 0 < self.fps <= 1000, f"{key}.fps", f"must be in (0, 1000], got {self.fps}")
        if self.exposure is not None:
            _check(
                math.isfinite(self.exposure), f"{key}.exposure", f"must be a number or null (auto), got {self.exposure}"
            )
        _check(
            self.fourcc == "" or (len(self.fourcc) == 4 and self.fourcc.isascii() and self.fourcc.isprintable()),
            f"{key}.fourcc",
            f'must be 4 characters such as "MJPG" or "YUYV", or "" for the device default, got {self.fourcc!r}',
        )
        period = self.reconnect_period_s
        _check(math.isfinite(period) and period > 0, f"{key}.reconnect_period_s", f"must be > 0, got {period}")
        _check(self.frame_id != "", f"{key}.frame_id", "is empty; the camera's optical frame, e.g. front_camera")

    def source(self) -> int | str:
        """What cv2.VideoCapture opens: an index, or a path."""
        if isinstance(self.device, str) and self.device.strip().isdigit():
            return int(self.device)
        return self.device

    def is_file(self) -> bool:
        source = self.source()
        return isinstance(source, str) and not source.startswith("/dev/")


@dataclass
class CameraIntrinsics:
    """The calibration that CameraInfo carries: K (3x3, row-major) and the distortion D under
    `distortion_model`. Empty K: uncalibrated (CameraInfo then has zeros and an empty model)."""

    k: tuple[float, ...] = ()
    d: tuple[float, ...] = ()
    distortion_model: str = "plumb_bob"

    def validate(self, key: str = "intrinsics") -> None:
        _check(len(self.k) in (0, 9), f"{key}.k", f"needs 9 numbers (3x3, row-major) or none, got {len(self.k)}")
        _check(all(math.isfinite(v) for v in (*self.k, *self.d)), f"{key}", "k and d must be finite")
        if not self.k:
            _check(not self.d, f"{key}.d", "given without k: distortion means nothing without the camera matrix")
            return
        _check(self.k[0] > 0 and self.k[4] > 0, f"{key}.k", f"focal lengths k[0], k[4] must be > 0, got {self.k}")
        if self.d:
            model, expected = self.distortion_model, DISTORTION_COEFFICIENTS.get(self.distortion_model)
            valid = ", ".join(DISTORTION_COEFFICIENTS)
            _check(expected is not None, f"{key}.distortion_model", f"unknown {model!r}; valid: {valid}")
            _check(len(self.d) == expected, f"{key}.d", f"{model} needs {expected} coefficients, got {len(self.d)}")

    def projection(self) -> tuple[float, ...]:
        """P (3x4, row-major) of a monocular camera: [K | 0]; zeros when uncalibrated."""
        if not self.k:
            return (0.0,) * 12
        k = self.k
        return (k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0)


@dataclass(frozen=True)
class GrantedSettings:
    width: int
    height: int
    fps: float  # 0: the device does not say
    fourcc: str
    mismatches: tuple[str, ...]  # what differs from the config, in words


@dataclass
class CameraCounters:
    frames: int = 0
    failed_reads: int = 0  # reads of an open camera that gave no frame (a file's end, looped, aside)
    reconnects: int = 0  # times the camera came back after it was lost or absent


class CameraUnavailable(RuntimeError):
    """The device could not be opened; the message says which and why."""


def _fourcc_text(code: float) -> str:
    value = int(code)
    text = "".join(chr((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))
    return text if value and text.isprintable() else ""


class UvcCamera:
    def __init__(
        self,
        config: UvcCameraConfig,
        on_event: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        config.validate()
        self.config = config
        self.name = f"camera {config.device}"
        self.counters = CameraCounters()
        self.granted: GrantedSettings | None = None
        self._on_event = on_event or (lambda kind, message: log.log(EVENT_LEVELS[kind], message))
        self._clock = clock
        self._capture: cv2.VideoCapture | None = None
        self._lost_since: float | None = None  # None while open, and before the first open()
        self._next_attempt = 0.0

    @property
    def is_open(self) -> bool:
        return self._capture is not None

    @property
    def lost_for_s(self) -> float | None:
        """How long the camera has been lost, None while it is open (or not yet opened)."""
        return None if self._lost_since is None else self._clock() - self._lost_since

    def open(self) -> GrantedSettings:
        """Open the device and apply the config; raises CameraUnavailable (and stays lost: read()
        keeps trying) when it cannot be opened."""
        try:
            self.granted = self._open()
        except CameraUnavailable:
            if self._lost_since is None:
                self._lost_since = self._clock()
            self._next_attempt = self._clock() + self.config.reconnect_period_s
            raise
        return self.granted

    def read(self) -> np.ndarray | None:
        """The next frame as uint8[H, W, 3] RGB, or None while the camera is lost."""
        if self._capture is None and not self._reopen():
            return None
        ok, bgr = self._capture.read()
        if not ok and self.config.is_file():  # the file's end: open it again, as a camera that never ends
            self._release()
            if self._reopen_file():
                ok, bgr = self._capture.read()
        if not ok:
            self.counters.failed_reads += 1
            self._lose("no frame from the device")
            return None
        self.counters.frames += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # OpenCV hands out BGR (CAP_PROP_CONVERT_RGB)

    def close(self) -> None:
        self._release()

    # opening -----------------------------------------------------------------------------------
    def _new_capture(self) -> cv2.VideoCapture:
        source = self.config.source()
        if isinstance(source, str) and not os.path.exists(source):
            raise CameraUnavailable(f"{self.name}: no such {'video file' if self.config.is_file() else 'device'}")
        # V4L2 explicitly on Linux: OpenCV may otherwise pick GStreamer, which ignores most properties
        on_linux = sys.platform.startswith("linux")
        capture = cv2.VideoCapture(source, cv2.CAP_V4L2 if on_linux and not self.config.is_file() else cv2.CAP_ANY)
        if not capture.isOpened():
            capture.release()
            raise CameraUnavailable(f"{self.name}: OpenCV cannot open it (busy, not a camera, or no permission)")
        return capture

    def _open(self) -> GrantedSettings:
        self._release()
        capture = self._new_capture()
        asked = self.config
        if not asked.is_file():  # a file has no controls to set
            # the pixel format first: it decides which sizes and rates the device offers
            if asked.fourcc:
                capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*asked.fourcc))
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, asked.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, asked.height)
            capture.set(cv2.CAP_PROP_FPS, asked.fps)
        exposure_mismatch = self._apply_exposure(capture)
        self._capture = capture
        granted = GrantedSettings(
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(capture.get(cv2.CAP_PROP_FPS)),
            fourcc=_fourcc_text(capture.get(cv2.CAP_PROP_FOURCC)),
            mismatches=(),
        )
        granted = replace(granted, mismatches=(*self._mismatches(granted), *exposure_mismatch))
        fourcc = f" {granted.fourcc}" if granted.fourcc else ""
        self._on_event("opened", f"{self.name} open: {granted.width}x{granted.height} at {granted.fps:g} fps{fourcc}")
        if granted.mismatches:
            self._on_event("mismatch", f"{self.name} did not grant the config: {'; '.join(granted.mismatches)}")
        return granted

    def _apply_exposure(self, capture: cv2.VideoCapture) -> list[str]:
        """Exposure as configured; what the device refused, in words."""
        exposure = self.config.exposure
        if self.config.is_file():
            return [] if exposure is None else [f"exposure {exposure:g} asked: a video file has no exposure control"]
        if exposure is None:
            capture.set(cv2.CAP_PROP_AUTO_EXPOSURE, V4L2_EXPOSURE_AUTO)  # best effort: not every camera has it
            return []
        manual = capture.set(cv2.CAP_PROP_AUTO_EXPOSURE, V4L2_EXPOSURE_MANUAL)
        if not (manual and capture.set(cv2.CAP_PROP_EXPOSURE, exposure)):
            return [f"exposure {exposure:g} asked: the device refused manual exposure"]
        granted = capture.get(cv2.CAP_PROP_EXPOSURE)
        return [] if granted == exposure else [f"exposure {exposure:g} asked, {granted:g} granted"]

    def _mismatches(self, granted: GrantedSettings) -> list[str]:
        asked, mismatches = self.config, []
        if (granted.width, granted.height) != (asked.width, asked.height):
            mismatches.append(f"{asked.width}x{asked.height} asked, {granted.width}x{granted.height} granted")
        if granted.fps <= 0:
            mismatches.append(f"{asked.fps:g} fps asked, the device does not report its rate")
        elif abs(granted.fps - asked.fps) > FPS_TOLERANCE * asked.fps:
            mismatches.append(f"{asked.fps:g} fps asked, {granted.fps:g} granted")
        if asked.fourcc and not asked.is_file() and granted.fourcc != asked.fourcc:
            mismatches.append(f"fourcc {asked.fourcc} asked, {granted.fourcc or 'unknown'} granted")
        return mismatches

    # losing and reconnecting ---------------------------------------------------------------------
    def _lose(self, reason: str) -> None:
        self._release()
        now = self._clock()
        self._lost_since, self._next_attempt = now, now + self.config.reconnect_period_s
        self._on_event("lost", f"{self.name} lost ({reason}); retrying every {self.config.reconnect_period_s:g} s")

    def _reopen(self) -> bool:
        """One attempt to open a lost camera, if one is due; whether it is open now."""
        now = self._clock()
        if now < self._next_attempt:
            return False
        lost_since = self._lost_since
        try:
            self.granted = self._open()
        except CameraUnavailable as error:
            self._next_attempt = now + self.config.reconnect_period_s
            self._on_event("retry_failed", str(error))
            return False
        self._lost_since = None
        if lost_since is not None:
            self.counters.reconnects += 1
            self._on_event("back", f"{self.name} back after {now - lost_since:.1f} s")
        return True

    def _reopen_file(self) -> bool:
        """Open the video file again at its start (no events: looping is not losing); False when it is gone."""
        try:
            self._capture = self._new_capture()
        except CameraUnavailable:
            return False
        return True

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
