"""Control ticks that come just after the cameras' frames are ready (the aggregator's timer mode).

A camera and the control loop run on clocks of their own. With 30 Hz frames and a 10 Hz tick, the
newest frame at a tick is between d and d + 33 ms old (d: from the frame's stamp until it is ready
on the aggregator: exposure or rendering, transport, decode, resize), and where in that range a
run lands is the luck of the start-up phase: bench/ros_timing.py at 640x480 over shared memory
measured one run whose wrist frames were ready about when the tick came, often enough after it
(the previous frame, 33 ms older, went out instead) to put the observation's age at 51.8 ms at
p99, over the 50 ms target (another run's phase: 19.5 ms). A tick placed just after the frames
are ready sees them d + margin old, whatever the phase at start-up: with it, p99 44.0 ms there
(the longest delays, 17-20 ms, set d) and 23.0 ms at 128x128.

TickAligner learns from each frame its stamp and when it became ready. A camera's stamps are
regular (its own clock); the delay from stamp to ready is not. With D = the longest delay of the
camera's recent frames + margin, a tick at stamp + D finds that frame ready. At every tick it looks
at the next one: how long after the latest such moment `stamp + D` it will come (modulo the frame
period), for the camera whose moment comes last. In [0, slack] it leaves the phase alone; otherwise
it asks for the next tick to come that much earlier, less slack / 2. Only earlier: one period of
the shortened length, never a longer one, which would count as a late tick. A camera whose clock
drifts against this node's moves its stamps, and the tick follows; a slow frame (a longer D for
the next 10 s) moves the tick to after it, as the frames it stands for will be as slow.

With several cameras the tick follows the one whose frames are ready last in the cycle: on one
stamp grid (the twin renders its cameras together; cameras triggered together) all are fresh,
otherwise the others' frames are older by their offset. Nothing is moved while a camera is missing,
slower than `max_frame_period_s` or stopped (the staleness limit's business), or without cameras.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_rl.sim.config import ConfigError

# Per camera: 10 s at 30 Hz, the frames D and the frame period are taken from. The longest delay
# comes from the odd frame held up by a busy executor (128x128 frames on the twin: 2-3 ms typical,
# 11 ms at most over 3 s): over a short window D rises and falls with each such frame, and the tick
# moves twice for every one of them.
FRAMES_KEPT = 300
FRAMES_NEEDED = 8  # before the first move


@dataclass
class TickAlignmentConfig:
    enabled: bool = True
    margin_ms: float = 3.0  # after the longest recent stamp-to-ready delay
    slack_ms: float = 5.0  # a tick up to this much later than aimed at is left alone
    max_frame_period_s: float = 0.1  # a camera slower than this (or stopped) suspends alignment

    def validate(self, key: str) -> None:
        for name in ("margin_ms", "slack_ms", "max_frame_period_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}.{name}: must be > 0, got {value}")


def frame_period_ns(stamps: np.ndarray) -> float:
    """The mean interval between consecutive stamps, leaving out gaps (dropped frames). The mean, not
    the median: the twin's 30 Hz frames come 33, 33 and 34 ms apart on its 1 ms physics grid, and a
    33 ms period would put the tick 1 ms off for every three frames between a stamp and the tick."""
    intervals = np.diff(stamps)
    return float(np.mean(intervals[intervals < 1.5 * np.median(intervals)]))


class TickAligner:
    """frame_ready(cam, stamp, t) when a camera's frame is ready; after_tick(t, next) at every control
    tick (t: now, next: when the timer will fire next) returns how many ns earlier than `next` the
    next tick should come (0: on time)."""

    def __init__(self, config: TickAlignmentConfig, cameras: list[str], tick_period_ns: int):
        config.validate("tick_alignment")
        self.config, self.cameras, self.tick_period_ns = config, list(cameras), tick_period_ns
        self._lock = threading.Lock()
        self._frames: dict[str, deque[tuple[int, int]]] = {cam: deque(maxlen=FRAMES_KEPT) for cam in self.cameras}
        self.shifts = 0
        self.last_shift_ms = 0.0
        self.ready_delay_ms: dict[str, float] = {}  # D - margin per camera, at the last tick

    def frame_ready(self, cam: str, stamp_ns: int, ready_ns: int) -> None:
        if not self.config.enabled:
            return
        with self._lock:
            self._frames[cam].append((stamp_ns, ready_ns))

    def after_tick(self, t_ns: int, next_tick_ns: int) -> int:
        c = self.config
        if not c.enabled or not self.cameras:
            return 0
        since_ready = []  # per camera: how long after its latest `stamp + D` the next tick comes
        with self._lock:
            for cam, frames in self._frames.items():
                if len(frames) < FRAMES_NEEDED or t_ns - frames[-1][1] > 2 * c.max_frame_period_s * 1e9:
                    return 0  # starting up, or stopped
                stamps, ready = np.array(frames, dtype=np.int64).T
                period = frame_period_ns(stamps)
                if not 0 < period <= c.max_frame_period_s * 1e9:
                    return 0
                delay = float(np.max(ready - stamps))
                self.ready_delay_ms[cam] = delay / 1e6
                since_ready.append((next_tick_ns - stamps[-1] - delay - c.margin_ms * 1e6) % period)
        late_ns = min(since_ready)
        if late_ns <= c.slack_ms * 1e6:
            return 0
        earlier_ns = round(late_ns - c.slack_ms * 1e6 / 2)
        if earlier_ns >= self.tick_period_ns:
            return 0
        with self._lock:
            self.shifts += 1
            self.last_shift_ms = earlier_ns / 1e6
        return earlier_ns

    def stats(self) -> dict:
        with self._lock:
            return {
                "enabled": self.config.enabled,
                "shifts": self.shifts,
                "last_shift_ms": self.last_shift_ms,
                "ready_delay_ms": dict(self.ready_delay_ms),
            }
