"""Control ticks that come just after the cameras' frames are ready (the aggregator's timer mode).

A camera and the control loop run on clocks of their own. With 30 Hz frames and a 10 Hz tick, the
newest frame at a tick is between d and d + 33 ms old (d: from the frame's stamp until it is ready
on the aggregator: exposure or rendering, transport, decode, resize), and where in that range a
run lands is the luck of the start-up phase. bench/ros_timing.py at 640x480 over shared memory
measured d ~16 ms: one run's phase gave the wrist camera 18 ms at p50, but its frame was ready
after the tick often enough (the previous frame, 33 ms older, went out instead) to put the
observation's age at 51.8 ms at p99, over the 50 ms target. A tick placed just after the frames
are ready sees them at about d + margin, whatever the phase at start-up.

TickAligner watches, at every tick, how long ago each camera's newest frame became ready (its lag)
and takes the smallest over the cameras (the one whose frame came last). After `window_ticks`
ticks it looks at the smallest lag over the window, m: the latest frame that was still in time.
With m in [margin, margin + slack] it leaves the phase alone; otherwise it asks for the next tick
`(m - target) mod frame_period` earlier, target = margin + slack / 2: m too large moves the tick up
to the frames; m too small (frames ready around the tick, some of them just after it) moves it up
to just after the previous frame. Only earlier: one period of the shortened length, never a longer
one, which would count as a late tick. Then it watches afresh; a camera whose clock drifts against
this node's moves m out of the band again in time and is followed.

It does nothing while a camera is missing or slower than `max_frame_period_s` (a stopped camera is
the staleness limit's business) and nothing without cameras.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_rl.sim.config import ConfigError

FRAME_INTERVALS = 16  # ready-time intervals kept per camera to estimate its frame period


@dataclass
class TickAlignmentConfig:
    enabled: bool = True
    margin_ms: float = 5.0  # the smallest lag aimed at: room for the frames' jitter in readiness
    slack_ms: float = 5.0  # lags in [margin, margin + slack] leave the phase alone
    window_ticks: int = 20  # ticks watched before each decision (2 s at 10 Hz)
    max_frame_period_s: float = 0.1  # a camera slower than this (or stopped) suspends alignment

    def validate(self, key: str) -> None:
        for name in ("margin_ms", "slack_ms", "max_frame_period_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}.{name}: must be > 0, got {value}")
        if not (isinstance(self.window_ticks, int) and self.window_ticks >= 1):
            raise ConfigError(f"{key}.window_ticks: must be an integer >= 1, got {self.window_ticks!r}")


class TickAligner:
    """frame_ready(cam, t) whenever a camera's frame is ready; after_tick(t) at every control tick
    returns how many ns earlier than one period from now the next tick should come (0: on time)."""

    def __init__(self, config: TickAlignmentConfig, cameras: list[str], tick_period_ns: int):
        config.validate("tick_alignment")
        self.config, self.cameras, self.tick_period_ns = config, list(cameras), tick_period_ns
        self._lock = threading.Lock()
        self._ready: dict[str, deque[int]] = {cam: deque(maxlen=FRAME_INTERVALS + 1) for cam in self.cameras}
        self._lags: list[tuple[int, str]] = []  # per tick: (smallest lag [ns], its camera)
        self.shifts = 0
        self.last_shift_ms = 0.0
        self.last_min_lag_ms: float | None = None

    def frame_ready(self, cam: str, t_ns: int) -> None:
        with self._lock:
            self._ready[cam].append(t_ns)

    def frame_period_ns(self, cam: str) -> float | None:
        """The median interval between the camera's recent frames; None with fewer than two."""
        ready = self._ready[cam]
        return float(np.median(np.diff(ready))) if len(ready) >= 2 else None

    def _lag(self, cam: str, t_ns: int) -> int | None:
        """How long before t_ns the camera's newest frame then was ready (one ready since went unused)."""
        ready = [r for r in self._ready[cam] if r <= t_ns]
        return t_ns - ready[-1] if ready else None

    def after_tick(self, t_ns: int) -> int:
        if not self.config.enabled or not self.cameras:
            return 0
        with self._lock:
            periods = {cam: self.frame_period_ns(cam) for cam in self.cameras}
            limit = self.config.max_frame_period_s * 1e9
            lags = {cam: self._lag(cam, t_ns) for cam in self.cameras}
            if any(p is None or p > limit or lags[cam] is None or lags[cam] > 2 * limit for cam, p in periods.items()):
                self._lags.clear()  # a camera starting, stopped or too slow to align to
                return 0
            cam = min(self.cameras, key=lambda c: lags[c])
            self._lags.append((lags[cam], cam))
            if len(self._lags) < self.config.window_ticks:
                return 0
            lag, cam = min(self._lags)
            self._lags.clear()
            return self._shift(lag, periods[cam])

    def _shift(self, lag_ns: int, frame_period_ns: float) -> int:
        c = self.config
        self.last_min_lag_ms = lag_ns / 1e6
        if c.margin_ms <= self.last_min_lag_ms <= c.margin_ms + c.slack_ms:
            return 0
        target_ns = (c.margin_ms + c.slack_ms / 2) * 1e6
        earlier_ns = round((lag_ns - target_ns) % frame_period_ns)
        if earlier_ns <= 0 or earlier_ns >= self.tick_period_ns:
            return 0
        self.shifts += 1
        self.last_shift_ms = earlier_ns / 1e6
        return earlier_ns

    def stats(self) -> dict:
        with self._lock:
            return {
                "enabled": self.config.enabled,
                "shifts": self.shifts,
                "last_shift_ms": self.last_shift_ms,
                "last_min_frame_lag_ms": self.last_min_lag_ms,
            }
