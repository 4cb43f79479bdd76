"""The sensor aggregator's logic: the latest sample of every sensor stream in, one spec observation
(robot_rl/spec.py) per control tick out. Pure numpy + OpenCV; ros_nodes/aggregator_node.py feeds
it from the drivers' (or the twin's) topics and publishes what it returns.

Streams, named after their topics (these names key `ages_ms`, the counters and the log):
  cameras/<cam>     frames, cropped and resized (cv2.INTER_AREA) on arrival to the configured size
  ft_sensor/wrench  [fx fy fz tx ty tz], up to ~1 kHz, appended to a ring buffer (O(1) per sample)
  tcp/pose          [x y z qw qx qy qz] -> state.tcp_pose
  tcp/twist         [vx vy vz wx wy wz] -> state.tcp_vel; with `twist_from_pose` (a robot whose
                    driver publishes no measured TCP twist, e.g. franka_ros2) the velocity between
                    each pose sample and the one before it instead
  joint_states      the gripper opening 0..1 -> state.gripper
  sim/privileged    the twin's ground truth (sim only): task_state -> state.task when not empty,
                    and task_state/success/reward/truncated -> the message's `privileged`

The wrench in the observation is WristFTSensor.period_statistics (mean force/torque, max-abs
force/torque, as the in-process twin computes it) over the samples stamped in (t - period, t].
On the twin in lockstep (`wrench_periods`) the node feeds every physics step's sample from
sim/wrench_period, so the statistic is the in-process twin's exactly.

Two tick modes (AggregatorConfig.tick):
  timer    real time. The node calls observe(now) every control period on its clock; each stream's
           newest sample is used and must be younger than its staleness limit, else that tick is
           missed (StaleStream, naming the stream and its age). A tick later than 1.5 periods after
           the previous one counts the ticks skipped in between as missed ("late"). The node
           moves its timer's phase to just after the cameras' frames are ready
           (robot_rl/robot/tick_alignment.py, `tick_alignment`), so that their age does not depend on
           the phase the camera and the timer happened to start in.
  stamped  lockstep with the twin (sim time): the observation for stamp t is emitted as soon as
           every stream has a sample stamped exactly t, t newer than the last one emitted
           (pop_ready). Stamps skipped with an incomplete set are counted as missed ("incomplete")
           when a later one completes. No staleness: in lockstep nothing moves until the actor
           commands, so a stream that stops stalls the loop rather than aging; the actor and safety
           watchdogs see that, here it shows as no output.

Wrench samples lost on the way are counted from the gaps between stamps (a gap of more than 1.5
expected periods of `wrench_hz` holds round(gap / period) - 1 lost samples); a sample stamped no
later than the previous one is refused and counted as dropped too.

Thread safety: every method takes an internal lock (a multi-threaded executor calls the node's
callbacks concurrently); add_image crops and resizes before taking it, so a large frame never
holds up the 1 kHz wrench.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from robot_rl import spec
from robot_rl.robot.messages import PRIVILEGED_KEYS, ObservationMessage
from robot_rl.robot.tick_alignment import TickAlignmentConfig
from robot_rl.sim.config import ConfigError, check_choice
from robot_rl.sim.ft_sensor import WristFTSensor

TICK_MODES = ("timer", "stamped")
WRENCH = "ft_sensor/wrench"
POSE, TWIST, JOINTS, PRIVILEGED = "tcp/pose", "tcp/twist", "joint_states", "sim/privileged"
HISTORY = 8  # samples kept per (non-wrench) stream: stamped mode matches stamps that arrive out of step
GAP_FACTOR = 1.5  # a wrench stamp gap above this many expected periods holds lost samples


def camera_stream(cam: str) -> str:
    return f"cameras/{cam}"


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


@dataclass
class AggregatorCameraConfig:
    """One camera's observation frame: `width` x `height`, taken from the `crop` [x0, y0, x1, y1]
    of the source frame in source pixels (x1, y1 exclusive), or, with no crop, from the largest
    centred region of the target's aspect ratio; then resized with cv2.INTER_AREA."""

    width: int = 128
    height: int = 128
    crop: list[int] = field(default_factory=list)
    compressed: bool = False  # subscribe to cameras/<cam>/image_raw/compressed (jpeg/png) instead

    def validate(self, key: str) -> None:
        _check(8 <= self.width <= 2048, f"{key}.width", f"must be in [8, 2048], got {self.width}")
        _check(8 <= self.height <= 2048, f"{key}.height", f"must be in [8, 2048], got {self.height}")
        if self.crop:
            _check(len(self.crop) == 4, f"{key}.crop", f"needs [x0, y0, x1, y1] or nothing, got {self.crop}")
            x0, y0, x1, y1 = self.crop
            _check(
                0 <= x0 < x1 and 0 <= y0 < y1, f"{key}.crop", f"needs 0 <= x0 < x1 and 0 <= y0 < y1, got {self.crop}"
            )


@dataclass
class StalenessConfig:
    """Timer mode: the oldest [s] the newest sample of each kind of stream may be at a tick."""

    camera: float = 0.1
    # A quarter of the default control period: the period's wrench statistic then still covers
    # three quarters of it, and a dead F/T sensor misses the next tick. 10 ms missed ticks whenever
    # the real-time twin fell 10-20 ms behind on a loaded 2-core machine (bench/ros_timing.py),
    # though every other stream of the same twin was within its limit.
    wrench: float = 0.025
    pose: float = 0.05
    twist: float = 0.05
    joints: float = 0.05
    privileged: float = 0.05

    def validate(self, key: str) -> None:
        for name in ("camera", "wrench", "pose", "twist", "joints", "privileged"):
            value = getattr(self, name)
            _check(value > 0, f"{key}.{name}", f"must be > 0, got {value}")


def _default_cameras() -> dict[str, AggregatorCameraConfig]:
    return {"front": AggregatorCameraConfig(), "wrist": AggregatorCameraConfig()}  # the twin's defaults


@dataclass
class AggregatorConfig:
    control_hz: float = 10.0
    tick: str = "timer"  # "timer" (real time) or "stamped" (lockstep with the twin); see the module docstring
    cameras: dict[str, AggregatorCameraConfig] = field(default_factory=_default_cameras)
    max_age: StalenessConfig = field(default_factory=StalenessConfig)
    wrench_hz: float = 1000.0  # the F/T driver's rate, to count lost samples; the twin in lockstep: control_hz
    wrench_buffer: int = 2000  # samples kept; at least two control periods' worth
    gripper_joints: list[str] = field(default_factory=lambda: ["panda_finger_joint1", "panda_finger_joint2"])
    max_finger_opening: float = 0.04  # m per finger (robot_rl/sim/panda.py FINGER_MAX_OPENING, the Franka Hand)
    privileged: bool = False  # sim only: also wait for the twin's sim/privileged at every stamp
    # sim only: the twin in lockstep sends each period's F/T samples in one message
    # (sim/wrench_period) rather than a WrenchStamped per sample
    wrench_periods: bool = False
    base_frame: str = ""  # frame the TCP pose and twist must be in; "" accepts any
    twist_from_pose: bool = False  # tcp_vel from consecutive poses, not from a tcp/twist topic
    ft_frame: str = ""  # frame the wrench must be in; "" accepts any
    stats_period_s: float = 5.0  # how often the node publishes the counters
    # timer mode: move the tick to just after the cameras' frames are ready (robot_rl/robot/tick_alignment.py)
    tick_alignment: TickAlignmentConfig = field(default_factory=TickAlignmentConfig)

    def validate(self, key: str = "aggregator") -> None:
        _check(0 < self.control_hz <= 1000, f"{key}.control_hz", f"must be in (0, 1000], got {self.control_hz}")
        check_choice(self.tick, TICK_MODES, f"{key}.tick")
        for name, cam in self.cameras.items():
            cam.validate(f"{key}.cameras.{name}")
        self.max_age.validate(f"{key}.max_age")
        _check(self.wrench_hz > 0, f"{key}.wrench_hz", f"must be > 0, got {self.wrench_hz}")
        needed = int(np.ceil(2 * self.wrench_hz / self.control_hz))
        _check(
            self.wrench_buffer >= needed,
            f"{key}.wrench_buffer",
            f"must hold two control periods of wrench samples (>= {needed} at {self.wrench_hz} Hz), "
            f"got {self.wrench_buffer}",
        )
        _check(
            len(self.gripper_joints) == 2,
            f"{key}.gripper_joints",
            f"needs the two finger joints' names, got {self.gripper_joints}",
        )
        _check(self.max_finger_opening > 0, f"{key}.max_finger_opening", "must be > 0")
        _check(self.stats_period_s > 0, f"{key}.stats_period_s", f"must be > 0, got {self.stats_period_s}")
        self.tick_alignment.validate(f"{key}.tick_alignment")

    @property
    def period_ns(self) -> int:
        return round(1e9 / self.control_hz)


def pose_velocity(pose_a: np.ndarray, stamp_a_ns: int, pose_b: np.ndarray, stamp_b_ns: int) -> np.ndarray:
    """[vx vy vz wx wy wz] in the base frame that took the TCP from pose a to pose b: the linear
    part the difference of positions over the time, the angular part the rotation vector of
    R_b R_a^T over the time (both frames' rotations are about base axes)."""
    dt = (stamp_b_ns - stamp_a_ns) * 1e-9
    linear = (np.asarray(pose_b[:3], np.float64) - pose_a[:3]) / dt
    turn = (
        spec.quat_rotation(np.asarray(pose_b[3:], np.float64))
        * spec.quat_rotation(np.asarray(pose_a[3:], np.float64)).inv()
    )
    return np.concatenate([linear, turn.as_rotvec() / dt]).astype(np.float32)


class StaleStream(Exception):
    """No observation at this tick: `stream` has no usable sample (age_s None: none at all)."""

    def __init__(self, stream: str, age_s: float | None, detail: str):
        super().__init__(f"{stream}: {detail}")
        self.stream, self.age_s = stream, age_s


def crop_and_resize(frame: np.ndarray, cam: AggregatorCameraConfig, stream: str) -> np.ndarray:
    """A uint8[H, W, 3] source frame -> uint8[cam.height, cam.width, 3] (see AggregatorCameraConfig)."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{stream}: frame must be uint8[H, W, 3] RGB, got {frame.dtype}{list(frame.shape)}")
    height, width = frame.shape[:2]
    if cam.crop:
        x0, y0, x1, y1 = cam.crop
        if x1 > width or y1 > height:
            raise ValueError(f"{stream}: the crop {cam.crop} lies outside the {width}x{height} frame")
    else:
        aspect = cam.width / cam.height
        crop_w, crop_h = min(width, round(height * aspect)), min(height, round(width / aspect))
        x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
        x1, y1 = x0 + crop_w, y0 + crop_h
    region = frame[y0:y1, x0:x1]
    if region.shape[:2] != (cam.height, cam.width):
        return cv2.resize(region, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(region)


class WrenchRing:
    """The newest `capacity` wrench samples, stamps increasing; append is O(1)."""

    def __init__(self, capacity: int):
        self.stamps = np.zeros(capacity, dtype=np.int64)
        self.values = np.zeros((capacity, 6))
        self.next = 0  # where the next sample goes
        self.size = 0

    def append(self, stamp_ns: int, wrench: np.ndarray) -> None:
        self.stamps[self.next] = stamp_ns
        self.values[self.next] = wrench
        self.next = (self.next + 1) % len(self.stamps)
        self.size = min(self.size + 1, len(self.stamps))

    def window(self, after_ns: int, upto_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(stamps, samples (n, 6)) stamped in (after_ns, upto_ns], oldest first."""
        order = np.arange(self.next - self.size, self.next) % len(self.stamps)
        stamps = self.stamps[order]
        lo, hi = np.searchsorted(stamps, [after_ns, upto_ns], side="right")
        return stamps[lo:hi], self.values[order[lo:hi]]


@dataclass
class _Stream:
    max_age_s: float
    samples: deque = field(default_factory=lambda: deque(maxlen=HISTORY))  # (stamp_ns, value), oldest first

    @property
    def newest_stamp(self) -> int | None:
        return self.samples[-1][0] if self.samples else None

    def at(self, stamp_ns: int):
        return next((value for stamp, value in self.samples if stamp == stamp_ns), None)


def _vector(value, size: int, stream: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(f"{stream}: expected {size} values, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{stream}: not finite: {array}")
    return array


MissedReport = Callable[[str, str], None]  # (key: the stream or reason, what happened)


class ObservationAggregator:
    def __init__(self, config: AggregatorConfig, on_missed: MissedReport | None = None):
        """`on_missed(key, text)` hears about every tick that yields no observation (and why),
        under the aggregator's lock: keep it cheap (the node rate-limits it into the log)."""
        config.validate()
        self.config = config
        self.period_ns = config.period_ns
        self.stamped = config.tick == "stamped"
        self.on_missed = on_missed or (lambda key, text: None)
        age = config.max_age
        self._streams = {camera_stream(cam): _Stream(age.camera) for cam in config.cameras}
        self._streams |= {POSE: _Stream(age.pose), TWIST: _Stream(age.twist), JOINTS: _Stream(age.joints)}
        if config.privileged:
            self._streams[PRIVILEGED] = _Stream(age.privileged)
        self._wrench = WrenchRing(config.wrench_buffer)
        self._wrench_period_ns = 1e9 / config.wrench_hz
        self._wrench_last: int | None = None
        self._lock = threading.Lock()
        self._last_emitted: int | None = None
        self._last_tick: int | None = None
        self._counters = {
            "ticks_emitted": 0,
            "ticks_waiting": 0,  # timer ticks before the first observation (streams starting up)
            "ticks_missed": 0,
            "wrench_lost": 0,  # inferred from stamp gaps
            "wrench_backwards": 0,  # refused: stamped no later than the previous sample
        }
        self._missed_by: dict[str, int] = defaultdict(int)
        self._received: dict[str, int] = defaultdict(int)  # samples stored, per stream
        self._bad: dict[str, int] = defaultdict(int)

    # samples in ---------------------------------------------------------------------------------
    def _add(self, stream: str, stamp_ns: int, value) -> None:
        with self._lock:
            samples = self._streams[stream]
            newest = samples.newest_stamp
            if newest is not None and stamp_ns <= newest:
                raise ValueError(f"{stream}: stamp {stamp_ns} ns is not newer than the previous sample's {newest} ns")
            samples.samples.append((stamp_ns, value))
            self._received[stream] += 1

    def add_image(self, cam: str, stamp_ns: int, rgb: np.ndarray) -> None:
        stream = camera_stream(cam)
        if cam not in self.config.cameras:
            raise ValueError(f"{stream}: not a configured camera ({', '.join(self.config.cameras)})")
        self._add(stream, stamp_ns, crop_and_resize(rgb, self.config.cameras[cam], stream))

    def add_pose(self, stamp_ns: int, tcp_pose) -> None:
        pose = _vector(tcp_pose, spec.STATE_DIMS["tcp_pose"], POSE)
        if abs(np.linalg.norm(pose[3:]) - 1.0) > 1e-3:
            raise ValueError(f"{POSE}: the orientation is not a unit quaternion: {pose[3:]}")
        with self._lock:
            samples = self._streams[POSE].samples
            previous = samples[-1] if samples else None
        self._add(POSE, stamp_ns, pose.astype(np.float32))
        if self.config.twist_from_pose and previous is not None:
            self._add(TWIST, stamp_ns, pose_velocity(previous[1], previous[0], pose, stamp_ns))

    def add_twist(self, stamp_ns: int, tcp_vel) -> None:
        self._add(TWIST, stamp_ns, _vector(tcp_vel, spec.STATE_DIMS["tcp_vel"], TWIST).astype(np.float32))

    def add_gripper(self, stamp_ns: int, opening) -> None:
        value = _vector(opening, spec.STATE_DIMS["gripper"], JOINTS)
        if not 0.0 <= value[0] <= 1.0:
            raise ValueError(f"{JOINTS}: gripper opening {value[0]} is outside [0, 1]")
        self._add(JOINTS, stamp_ns, value.astype(np.float32))

    def add_privileged(self, stamp_ns: int, privileged: dict) -> None:
        """The twin's ground truth at `stamp_ns` (robot_rl/robot/messages.py PRIVILEGED_KEYS)."""
        if PRIVILEGED not in self._streams:
            raise ValueError(f"{PRIVILEGED}: not configured (AggregatorConfig.privileged is off)")
        if not isinstance(privileged, dict) or "task_state" not in privileged:
            raise ValueError(f"{PRIVILEGED}: expected a dict with 'task_state', got {type(privileged).__name__}")
        task_state = np.asarray(privileged["task_state"], dtype=np.float32)
        if task_state.ndim != 1 or not np.all(np.isfinite(task_state)):
            raise ValueError(f"{PRIVILEGED}: task_state must be a finite 1-D array, got {task_state}")
        values = {key: privileged[key] for key in PRIVILEGED_KEYS if key in privileged}
        self._add(PRIVILEGED, stamp_ns, values | {"task_state": task_state})

    def add_wrench(self, stamp_ns: int, wrench) -> None:
        """One F/T sample [N, Nm]: O(1), called at up to ~1 kHz."""
        value = _vector(wrench, 6, WRENCH)
        with self._lock:
            last = self._wrench_last
            if last is not None:
                if stamp_ns <= last:
                    self._counters["wrench_backwards"] += 1
                    raise ValueError(f"{WRENCH}: stamp {stamp_ns} ns is not newer than the previous sample's {last} ns")
                periods = (stamp_ns - last) / self._wrench_period_ns
                if periods > GAP_FACTOR:
                    self._counters["wrench_lost"] += round(periods) - 1
            self._wrench.append(stamp_ns, value)
            self._wrench_last = stamp_ns
            self._received[WRENCH] += 1

    def reject(self, stream: str) -> None:
        """Count a message of `stream` dropped as bad (unreadable, non-finite, stamp going back)."""
        with self._lock:
            self._bad[stream] += 1

    # observations out -----------------------------------------------------------------------------
    def ready_stamp(self) -> int | None:
        """Stamped mode: the oldest stamp newer than the last emitted at which every stream has a sample."""
        with self._lock:
            return self._ready_stamp()

    def pop_ready(self) -> list[ObservationMessage]:
        """Stamped mode: the observations of every ready stamp, oldest first."""
        with self._lock:
            messages = []
            while (stamp := self._ready_stamp()) is not None:
                messages.append(self._observe(stamp))
            return messages

    def observe(self, t_ns: int) -> ObservationMessage:
        """The observation at `t_ns` (timer mode: the tick's time on the node clock; stamped mode: a
        stamp every stream has). Raises StaleStream, after counting the missed tick and reporting
        it to on_missed, when a stream has no usable sample."""
        with self._lock:
            if self.stamped and self._last_emitted is not None and t_ns <= self._last_emitted:
                raise ValueError(f"stamp {t_ns} ns: not newer than the last observation's {self._last_emitted} ns")
            return self._observe(t_ns)

    def stats(self) -> dict:
        with self._lock:
            wrench_dropped = self._counters["wrench_lost"] + self._counters["wrench_backwards"]
            return {
                **self._counters,
                "wrench_dropped": wrench_dropped,
                "missed_by": dict(self._missed_by),
                "received": dict(self._received),
                "bad_messages": dict(self._bad),
            }

    # under the lock --------------------------------------------------------------------------------
    def _sample_stamps(self, after_ns: int) -> list[int]:
        stamps = {stamp for s in self._streams.values() for stamp, _ in s.samples if stamp > after_ns}
        return sorted(stamps)

    def _has_wrench_at(self, stamp_ns: int) -> bool:
        return len(self._wrench.window(stamp_ns - 1, stamp_ns)[0]) > 0

    def _ready_stamp(self) -> int | None:
        last = -1 if self._last_emitted is None else self._last_emitted
        for stamp in self._sample_stamps(last):
            if self._has_wrench_at(stamp) and all(s.at(stamp) is not None for s in self._streams.values()):
                return stamp
        return None

    def _miss(self, key: str, text: str, count: int = 1) -> None:
        self._counters["ticks_missed"] += count
        self._missed_by[key] += count
        self.on_missed(key, text)

    def _stale(self, stream: str, age_s: float | None, detail: str) -> StaleStream:
        if self._last_emitted is None and not self.stamped:
            self._counters["ticks_waiting"] += 1
            self.on_missed(stream, f"waiting for the first observation: {stream}: {detail}")
        else:
            self._miss(stream, f"control tick missed: {stream}: {detail}")
        return StaleStream(stream, age_s, detail)

    def _count_late(self, t_ns: int) -> None:
        """Timer mode: ticks the timer skipped since the previous one (an executor too busy to run it)."""
        if self._last_tick is not None:
            periods = (t_ns - self._last_tick) / self.period_ns
            if periods > GAP_FACTOR:
                late_ms = (t_ns - self._last_tick) / 1e6
                text = f"{round(periods) - 1} control tick(s) missed: this tick came {late_ms:.0f} ms after the last"
                self._miss("late", text, round(periods) - 1)
        self._last_tick = t_ns

    def _count_incomplete(self, t_ns: int) -> None:
        """Stamped mode: stamps between the last observation and t_ns that never got a full set."""
        last = -1 if self._last_emitted is None else self._last_emitted
        for stamp in self._sample_stamps(last):
            if stamp >= t_ns:
                break
            missing = [name for name, s in self._streams.items() if s.at(stamp) is None]
            missing += [] if self._has_wrench_at(stamp) else [WRENCH]
            self._miss("incomplete", f"stamp {stamp} ns skipped: no sample from {', '.join(missing)}")

    def _pick(self, name: str, t_ns: int) -> tuple[object, int]:
        """(value, stamp) of stream `name` for the tick at t_ns; raises StaleStream."""
        stream = self._streams[name]
        newest = stream.newest_stamp
        if newest is None:
            raise self._stale(name, None, "no sample yet")
        if self.stamped:
            value = stream.at(t_ns)
            if value is None:
                raise self._stale(name, None, f"no sample stamped {t_ns} ns (newest {newest} ns)")
            return value, t_ns
        age_s = (t_ns - newest) / 1e9
        if age_s > stream.max_age_s:
            raise self._stale(
                name, age_s, f"newest sample is {age_s * 1e3:.0f} ms old (limit {stream.max_age_s * 1e3:.0f} ms)"
            )
        return stream.samples[-1][1], newest

    def _wrench_statistic(self, t_ns: int) -> tuple[np.ndarray, int]:
        last = self._wrench_last
        if last is None:
            raise self._stale(WRENCH, None, "no sample yet")
        if not self.stamped:
            age_s = (t_ns - last) / 1e9
            if age_s > self.config.max_age.wrench:
                limit_ms = self.config.max_age.wrench * 1e3
                raise self._stale(WRENCH, age_s, f"newest sample is {age_s * 1e3:.0f} ms old (limit {limit_ms:.0f} ms)")
        stamps, samples = self._wrench.window(t_ns - self.period_ns, t_ns)
        if not len(samples):
            age_s = (t_ns - last) / 1e9
            raise self._stale(WRENCH, age_s, f"no sample in the control period ending at {t_ns} ns")
        return WristFTSensor.period_statistics(samples), int(stamps[-1])

    def _observe(self, t_ns: int) -> ObservationMessage:
        if not self.stamped:
            self._count_late(t_ns)
        picked = {name: self._pick(name, t_ns) for name in self._streams}
        wrench, wrench_stamp = self._wrench_statistic(t_ns)
        if self.stamped:
            self._count_incomplete(t_ns)
        state = {
            "tcp_pose": picked[POSE][0],
            "tcp_vel": picked[TWIST][0],
            "gripper": picked[JOINTS][0],
            "wrench": wrench,
        }
        privileged = picked[PRIVILEGED][0] if PRIVILEGED in picked else {}
        if len(privileged.get("task_state", ())):
            state["task"] = privileged["task_state"]
        obs = {"state": state}
        if self.config.cameras:
            obs = {"images": {cam: picked[camera_stream(cam)][0] for cam in self.config.cameras}, "state": state}
        ages_ms = {name: (t_ns - stamp) / 1e6 for name, (_, stamp) in picked.items()}
        ages_ms[WRENCH] = (t_ns - wrench_stamp) / 1e6
        self._last_emitted = t_ns
        self._counters["ticks_emitted"] += 1
        return ObservationMessage(stamp_ns=t_ns, obs=obs, ages_ms=ages_ms, privileged=dict(privileged))
