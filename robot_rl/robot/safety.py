"""The safety filter between the policy and the robot: workspace box, speed and force limits,
stale-sensor and stale-command watchdogs, and stop / reset / resume. Pure numpy: the ROS safety
node (ros_nodes/safety_node.py) feeds it messages, and `SafetyWrapper` puts the same filter on
the in-process twin (SimTwinEnv).

Commands (the actor's, before they reach the controller)
  target pose [x y z qw qx qy qz] (Cartesian impedance): the position is clipped to the workspace
      box, then the step from the measured pose is limited to max_speed x control period along
      its direction, and the rotation from the measured orientation to max_angular_speed x period
      about its axis. Clipping to the box first and limiting the step after means an arm pushed
      out of the box walks back in at the speed limit rather than jumping.
  twist [vx vy vz wx wy wz] (servo): the velocity is cut so that one control period of it ends
      inside the box, then its linear and angular norms are scaled to the speed limits.
  gripper (the spec's command): passed through, or 0.0 ("stay") while holding.
  The hold command is the latest measured pose as the target (an impedance controller then
  pushes nowhere), or a zero twist; the gripper stays. Until every sensor stream has delivered
  once nothing is sent at all, not even a hold: nothing has moved the arm yet, and its
  controller keeps the pose it started with.

States (`status`, as safety/status publishes it)
  "RUNNING"              commands pass, clipped to the limits.
  "WAITING: <why>"       holding, not latched: it ends by itself when the cause goes. Causes: a
                         sensor stream that has not delivered its first sample yet (start-up), or
                         no motion command for command_timeout (a policy that pauses, e.g. for an
                         episode reset or new weights, is normal; a servo interface must not keep
                         the last twist, and every later command is step-limited from the measured
                         pose, so resuming cannot jump).
  "HOLDING: <why>"       latched: a fault or stop(). Needs reset(), then resume().
  "HOLDING: reset; ..."  faults cleared by reset(), still holding until resume().

  RUNNING <-> WAITING                       by themselves, as the waiting cause comes and goes
  RUNNING / WAITING --fault or stop()-->    HOLDING(reason)
  HOLDING(reason) --reset()-->              HOLDING(reset), only if the condition is gone (else
                                            reset() says what still holds and nothing changes)
  HOLDING(reset) --resume()-->              RUNNING (or WAITING); a stream gone stale or any fault
                                            since the reset latches again, and resume() refuses
  HOLDING(any) --fault or stop()-->         the first reason stays until a reset clears it; a
                                            reset checks every condition, not just that one.
Start-up check (frames and units): before the first target since start-up or resume(), a
measured TCP position more than mismatch_distance outside the box, or that first target more
than mismatch_distance from the measured pose, cannot come from a policy acting within the
limits: the pose, the commands and the box disagree on the base frame or the units (mm for m).
The filter latches, saying so, and refuses to start; reset() is refused while the measured pose
is that far outside.
Faults (latched): the norm of a wrench sample's force or torque over its limit (every sample is
checked, unfiltered: the hold starts at the sample that crosses it); a sensor stream that
delivered and then went stale (its latest stamp older than its timeout at a check: a control
tick or a command); NaN/inf in a measurement or a command, or a message the node could not
convert; a stream's stamp or the clock going backwards. Staleness compares header stamps with
the caller's clock, so sensor clocks must agree with it (sim time, or synchronised machines).

Times are integer nanoseconds. The filter is not thread-safe: the node calls it from one
callback group at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl import spec
from robot_rl.sim.config import ROTATION_AXES, ConfigError, RobotConfig, SimConfig, check_choice

COMMAND_INTERFACES = ("pose", "twist")
QUAT_NORM_TOLERANCE = 1e-3  # |q| may be off 1 by this much (float32 round trips), then it is normalised
RUNNING, WAITING, HOLDING = "RUNNING", "WAITING", "HOLDING"
RESET_PENDING = "reset; waiting for resume"


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


@dataclass
class SafetyConfig:
    """The filter's limits. The box defaults to the Panda twin's (RobotConfig) and the speed limits
    let every action of the twin's scaling through (0.03 m and 0.15 rad per axis per 0.1 s, up to
    0.52 m/s and 2.6 rad/s along a diagonal): a real robot sets its own. The sensor timeouts fit the
    twin in lockstep, which publishes one wrench per control period; a 1 kHz F/T driver can use
    a much shorter wrench_timeout."""

    command_interface: str = "pose"  # "pose": target PoseStamped (impedance); "twist": TwistStamped (servo)
    cameras: list[str] = field(default_factory=list)  # camera streams watched for staleness
    control_hz: float = 10.0
    # the box the TCP target stays in, robot base frame [m]
    workspace_low: list[float] = field(default_factory=lambda: list(RobotConfig().workspace_low))
    workspace_high: list[float] = field(default_factory=lambda: list(RobotConfig().workspace_high))
    max_speed: float = 0.6  # m/s: a target at most this x period from the measured position; twist norm
    max_angular_speed: float = 3.0  # rad/s: likewise for the orientation
    max_force: float = 60.0  # N, norm of a wrench sample's force, beyond which the arm holds
    max_torque: float = 6.0  # Nm, norm of its torque
    pose_timeout: float = 0.25  # s: a stream whose latest stamp is older than this is stale
    wrench_timeout: float = 0.25
    camera_timeout: float = 0.5
    command_timeout: float = 0.5  # s without a motion command: hold (WAITING, not latched)
    # m; see the start-up check in the module docstring. Larger than any step a policy can ask for.
    mismatch_distance: float = 0.10

    def validate(self, key: str = "safety") -> None:
        check_choice(self.command_interface, COMMAND_INTERFACES, f"{key}.command_interface")
        _check(all(isinstance(cam, str) and cam for cam in self.cameras), f"{key}.cameras", "needs camera names")
        _check(len(set(self.cameras)) == len(self.cameras), f"{key}.cameras", "lists a camera twice")
        _check(0 < self.control_hz <= 1000, f"{key}.control_hz", f"must be in (0, 1000], got {self.control_hz}")
        for name in ("workspace_low", "workspace_high"):
            values = getattr(self, name)
            _check(len(values) == 3 and all(map(math.isfinite, values)), f"{key}.{name}", "needs 3 finite numbers")
        _check(
            all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)),
            f"{key}.workspace_high",
            "must be above workspace_low on every axis",
        )
        for name in ("max_speed", "max_angular_speed", "max_force", "max_torque", "mismatch_distance"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{key}.{name}", f"must be > 0, got {value}")
        for name in ("pose_timeout", "wrench_timeout", "camera_timeout"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{key}.{name}", f"must be > 0 s, got {value}")
        # one command per control period is the normal rate: a shorter timeout would always wait
        period = 1.0 / self.control_hz
        _check(
            math.isfinite(self.command_timeout) and self.command_timeout > period,
            f"{key}.command_timeout",
            f"must be longer than a control period ({period:g} s), got {self.command_timeout}",
        )


def safety_config_for(robot: RobotConfig, sim: SimConfig) -> SafetyConfig:
    """The default limits for a robot config's workspace box and a sim config's control rate and
    cameras (the twin's own values, until the config tree holds a safety section)."""
    return SafetyConfig(
        cameras=list(sim.cameras),
        control_hz=sim.control_hz,
        workspace_low=list(robot.workspace_low),
        workspace_high=list(robot.workspace_high),
    )


@dataclass(frozen=True)
class Command:
    """What to send to the controller. `value` is the target pose [x y z qw qx qy qz] or the twist
    [vx vy vz wx wy wz]; None when nothing is to be sent (a sensor stream has not started). `note`
    says why it holds or what was clipped; "" when the command passed unchanged."""

    value: np.ndarray | None
    hold: bool
    note: str = ""

    @property
    def clipped(self) -> bool:
        return not self.hold and bool(self.note)


@dataclass
class _Stream:
    name: str
    timeout_ns: int
    stamp_ns: int | None = None  # of the latest valid sample
    error: str | None = None  # why the latest sample was refused; None once a valid one came

    def staleness(self, now_ns: int) -> str | None:
        if self.stamp_ns is None or now_ns - self.stamp_ns <= self.timeout_ns:
            return None
        return f"{self.name} stale: {(now_ns - self.stamp_ns) / 1e9:.3f} s old > {self.timeout_ns / 1e9:.3f} s"


def _seconds_ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _non_finite(values: np.ndarray, what: str) -> str | None:
    bad = np.flatnonzero(~np.isfinite(values))
    return f"{what}[{bad[0]}] is {values[bad[0]]}" if bad.size else None


class SafetyFilter:
    def __init__(self, config: SafetyConfig):
        config.validate("safety")
        self.config = config
        self.period_ns = round(1e9 / config.control_hz)
        self._low, self._high = np.array(config.workspace_low, float), np.array(config.workspace_high, float)
        self._max_step = config.max_speed / config.control_hz  # m per control period
        self._max_turn = config.max_angular_speed / config.control_hz  # rad per control period
        self._pose = _Stream("pose", _seconds_ns(config.pose_timeout))
        self._wrench = _Stream("wrench", _seconds_ns(config.wrench_timeout))
        self._cameras = {cam: _Stream(f"camera {cam}", _seconds_ns(config.camera_timeout)) for cam in config.cameras}
        self._sensors = [self._pose, self._wrench, *self._cameras.values()]
        self.measured_pose: np.ndarray | None = None  # the latest valid TCP pose, float64[7]
        self._force = self._torque = 0.0  # norms of the latest valid wrench sample
        self._fault: str | None = None  # the latched reason; cleared by reset()
        self._armed = True  # False from a fault or stop() until resume()
        self._waiting: tuple[tuple, str] | None = None  # (cause, text) of a not-latched hold
        self._now_ns: int | None = None  # the latest clock reading seen
        self._last_command_ns: int | None = None  # arrival of the latest motion command
        self._first_target_checked = False  # the start-up check of the first target since start/resume
        self._update_waiting()

    # state ------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self._fault is not None or not self._armed:
            return HOLDING
        return WAITING if self._waiting is not None else RUNNING

    @property
    def holding(self) -> bool:
        return self.state != RUNNING

    @property
    def status(self) -> str:
        """RUNNING, or WAITING / HOLDING with the reason; the text changes only on a transition."""
        if self._fault is not None:
            return f"{HOLDING}: {self._fault}"
        if not self._armed:
            return f"{HOLDING}: {RESET_PENDING}"
        return f"{WAITING}: {self._waiting[1]}" if self._waiting is not None else RUNNING

    @property
    def started(self) -> bool:
        """Whether every sensor stream has delivered once; before, nothing is sent at all."""
        return all(stream.stamp_ns is not None for stream in self._sensors)

    def hold_command(self) -> Command:
        if not self.started:
            return Command(None, hold=True, note=self.status)
        value = self.measured_pose.copy() if self.config.command_interface == "pose" else np.zeros(6)
        return Command(value, hold=True, note=self.status)

    # measurements -------------------------------------------------------------------------------
    def measure_pose(self, pose: np.ndarray | Sequence[float], stamp_ns: int) -> None:
        """The measured TCP pose [x y z qw qx qy qz] in the base frame."""
        pose = np.array(pose, dtype=np.float64)
        if pose.shape != (7,):
            raise ValueError(f"pose must be [x y z qw qx qy qz], got shape {pose.shape}")
        error = _non_finite(pose, "pose")
        if error is None:
            norm = np.linalg.norm(pose[3:])
            if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
                error = f"pose orientation is not a unit quaternion (norm {norm:.6g})"
        if error is not None:
            self._refuse(self._pose, error)
            return
        pose[3:] /= norm
        self._stamp(self._pose, stamp_ns)
        self.measured_pose = pose
        if (mismatch := self._pose_mismatch()) is not None:
            self._latch(mismatch)

    def measure_wrench(self, wrench: np.ndarray | Sequence[float], stamp_ns: int) -> None:
        """One F/T sample [fx fy fz tx ty tz] (N, Nm). Called at the sensor's rate, so plain floats."""
        if len(wrench) != 6:
            raise ValueError(f"wrench must be [fx fy fz tx ty tz], got {len(wrench)} values")
        fx, fy, fz, tx, ty, tz = map(float, wrench)
        force, torque = math.hypot(fx, fy, fz), math.hypot(tx, ty, tz)
        if not (math.isfinite(force) and math.isfinite(torque)):
            self._refuse(self._wrench, f"wrench has a non-finite value: {[fx, fy, fz, tx, ty, tz]}")
            return
        self._stamp(self._wrench, stamp_ns)
        self._force, self._torque = force, torque
        if force > self.config.max_force:
            self._latch(f"wrench force {force:.1f} N > {self.config.max_force:.1f} N")
        if torque > self.config.max_torque:
            self._latch(f"wrench torque {torque:.2f} Nm > {self.config.max_torque:.2f} Nm")

    def measure_camera(self, camera: str, stamp_ns: int) -> None:
        """A frame from `camera` (only its stamp matters here)."""
        if camera not in self._cameras:
            raise ValueError(f"camera {camera!r} is not watched; watched: {', '.join(self._cameras) or 'none'}")
        self._stamp(self._cameras[camera], stamp_ns)

    def bad_measurement(self, stream: str, reason: str) -> None:
        """A message of sensor stream `stream` ("pose" or "wrench") that could not be read: latched."""
        streams = {"pose": self._pose, "wrench": self._wrench}
        if stream not in streams:
            raise ValueError(f"stream {stream!r}: valid: pose, wrench")
        self._refuse(streams[stream], reason)

    # commands -----------------------------------------------------------------------------------
    def filter_pose(self, target: np.ndarray | Sequence[float], now_ns: int) -> Command:
        """The target pose to send for the actor's `target` [x y z qw qx qy qz], or the hold."""
        target = np.array(target, dtype=np.float64)
        if target.shape != (7,):
            raise ValueError(f"target pose must be [x y z qw qx qy qz], got shape {target.shape}")
        error = _non_finite(target, "target pose")
        norm = np.linalg.norm(target[3:])
        if error is None and abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
            error = f"target pose orientation is not a unit quaternion (norm {norm:.6g})"
        if error is not None:
            return self.reject_command(error, now_ns)
        self._command_arrived(now_ns)
        if self.holding:
            return self.hold_command()
        measured, notes = self.measured_pose, []
        if not self._first_target_checked:
            self._first_target_checked = True
            distance = np.linalg.norm(target[:3] - measured[:3])
            if distance > self.config.mismatch_distance:
                self._latch(
                    f"refusing to start: the first target is {distance:.3f} m from the measured pose "
                    f"(> {self.config.mismatch_distance} m): do the commands and the pose share a base frame "
                    "and units (m)?"
                )
                return self.hold_command()
        position = np.clip(target[:3], self._low, self._high)
        if not np.array_equal(position, target[:3]):
            notes.append(f"target {np.linalg.norm(position - target[:3]):.3f} m outside the workspace box")
        step = position - measured[:3]
        distance = np.linalg.norm(step)
        if distance > self._max_step:
            position = measured[:3] + step * (self._max_step / distance)
            notes.append(f"step {distance:.3f} m > {self._max_step:.3f} m")
        quat = target[3:] / norm
        turn = (spec.quat_rotation(quat) * spec.quat_rotation(measured[3:]).inv()).as_rotvec()
        angle = np.linalg.norm(turn)
        if angle > self._max_turn:
            rotation = Rotation.from_rotvec(turn * (self._max_turn / angle)) * spec.quat_rotation(measured[3:])
            quat = spec.canonical_quat(spec.rotation_quat(rotation))
            notes.append(f"turn {angle:.3f} rad > {self._max_turn:.3f} rad")
        return Command(np.concatenate([position, quat]), hold=False, note="; ".join(notes))

    def filter_twist(self, twist: np.ndarray | Sequence[float], now_ns: int) -> Command:
        """The twist to send for the actor's `twist` [vx vy vz wx wy wz], or the hold."""
        twist = np.array(twist, dtype=np.float64)
        if twist.shape != (6,):
            raise ValueError(f"twist must be [vx vy vz wx wy wz], got shape {twist.shape}")
        error = _non_finite(twist, "twist")
        if error is not None:
            return self.reject_command(error, now_ns)
        self._command_arrived(now_ns)
        if self.holding:
            return self.hold_command()
        period, position, notes = 1.0 / self.config.control_hz, self.measured_pose[:3], []
        linear, angular = twist[:3], twist[3:]
        reached = np.clip(position + linear * period, self._low, self._high)
        if not np.array_equal(reached, position + linear * period):
            linear = (reached - position) / period
            notes.append("velocity cut at the workspace box")
        for name, velocity, limit, unit in (
            ("speed", linear, self.config.max_speed, "m/s"),
            ("angular speed", angular, self.config.max_angular_speed, "rad/s"),
        ):
            speed = np.linalg.norm(velocity)
            if speed > limit:
                velocity *= limit / speed
                notes.append(f"{name} {speed:.3f} {unit} > {limit:.3f} {unit}")
        return Command(np.concatenate([linear, angular]), hold=False, note="; ".join(notes))

    def filter_gripper(self, value: float, now_ns: int) -> float:
        """The gripper command to send: the actor's, or 0.0 ("stay") while holding."""
        self._evaluate(now_ns)
        if not math.isfinite(value):
            self._latch(f"gripper command is {value}")
        return 0.0 if self.holding else float(value)

    def reject_command(self, reason: str, now_ns: int) -> Command:
        """A command that cannot be used (non-finite, unreadable): latched; the hold goes instead."""
        self._evaluate(now_ns)
        self._latch(reason)
        return self.hold_command()

    def tick(self, now_ns: int) -> Command | None:
        """The watchdog, once per control period: checks the clock and the streams' ages; returns
        the hold command while holding (to be sent again), None while running."""
        self._evaluate(now_ns)
        return self.hold_command() if self.holding else None

    # operator ---------------------------------------------------------------------------------
    def stop(self) -> str:
        if self._fault is not None:
            return f"already holding: {self._fault}"
        self._latch("stopped by request")
        return self.status

    def reset(self, now_ns: int) -> tuple[bool, str]:
        """Clear the latched fault if its condition is gone: (done, what happened or why not)."""
        self._evaluate(now_ns)
        if self._fault is None:
            return True, f"nothing to reset: {self.status}"
        problems = self._problems()
        if problems:
            return False, f"not reset ({self._fault}): {'; '.join(problems)}"
        cleared, self._fault = self._fault, None
        return True, f"reset ({cleared}); call resume to move"

    def resume(self, now_ns: int) -> tuple[bool, str]:
        """Back to RUNNING after a reset, if nothing has gone wrong since: (done, status or why not)."""
        self._evaluate(now_ns)
        if self._fault is not None:
            return False, f"reset first: {self.status}"
        if self._armed:
            return True, f"already {self.status}"
        # reset() found nothing wrong, and anything gone wrong since has latched a fault (checked above)
        self._armed = True
        self._last_command_ns = now_ns  # the actor gets a full command_timeout to start again
        self._first_target_checked = False
        self._update_waiting()
        return True, self.status

    # internals ----------------------------------------------------------------------------------
    def _latch(self, reason: str) -> None:
        if self._fault is None:  # the first cause stays; reset() checks every condition anyway
            self._fault = reason
        self._armed = False

    def _pose_mismatch(self) -> str | None:
        """The start-up check of the measured pose: until the first target passed (later, an arm
        pushed out of the box walks back in at the speed limit)."""
        if self.measured_pose is None or self._first_target_checked:
            return None
        position = self.measured_pose[:3]
        outside = np.linalg.norm(position - np.clip(position, self._low, self._high))
        if outside <= self.config.mismatch_distance:
            return None
        return (
            f"the measured TCP position {np.round(position, 3).tolist()} is {outside:.3f} m outside the workspace "
            f"box {self._low.tolist()}..{self._high.tolist()}: is the pose in the robot base frame, in metres?"
        )

    def _refuse(self, stream: _Stream, reason: str) -> None:
        stream.error = reason
        self._latch(reason)

    def _stamp(self, stream: _Stream, stamp_ns: int) -> None:
        if stream.stamp_ns is not None and stamp_ns < stream.stamp_ns:
            self._latch(f"{stream.name} stamp went back {(stream.stamp_ns - stamp_ns) / 1e9:.3f} s")
        first = stream.stamp_ns is None
        stream.stamp_ns, stream.error = stamp_ns, None  # later stamps compare with this timeline
        if first:
            self._update_waiting()

    def _command_arrived(self, now_ns: int) -> None:
        self._last_command_ns = now_ns
        self._evaluate(now_ns)

    def _evaluate(self, now_ns: int) -> None:
        """The checks that need the time: the clock itself, stale streams, a stale command."""
        if self._now_ns is not None and now_ns < self._now_ns:
            self._latch(f"clock went back {(self._now_ns - now_ns) / 1e9:.3f} s")
        self._now_ns = now_ns
        if self._last_command_ns is None:
            self._last_command_ns = now_ns  # the first command is due command_timeout after the first check
        for stream in self._sensors:
            stale = stream.staleness(now_ns)
            if stale is not None:
                self._latch(stale)
        self._update_waiting()

    def _update_waiting(self) -> None:
        missing = [stream.name for stream in self._sensors if stream.stamp_ns is None]
        limit_ns = _seconds_ns(self.config.command_timeout)
        if missing:
            cause, text = ("missing", *missing), f"no {', '.join(missing)} received yet"
        elif self._now_ns is not None and self._now_ns - self._last_command_ns > limit_ns:
            age = (self._now_ns - self._last_command_ns) / 1e9
            cause, text = ("command",), f"no command for {age:.3f} s > {limit_ns / 1e9:.3f} s"
        else:
            self._waiting = None
            return
        if self._waiting is None or self._waiting[0] != cause:  # the text is frozen while the cause lasts
            self._waiting = (cause, text)

    def _problems(self) -> list[str]:
        """What keeps the arm from moving now (empty: nothing)."""
        problems = []
        for stream in self._sensors:
            if stream.error is not None:
                problems.append(stream.error)
            elif stream.stamp_ns is None:
                problems.append(f"no {stream.name} received yet")
            elif (stale := stream.staleness(self._now_ns)) is not None:
                problems.append(stale)
        if (mismatch := self._pose_mismatch()) is not None:
            problems.append(mismatch)
        if self._force > self.config.max_force:
            problems.append(f"wrench force {self._force:.1f} N > {self.config.max_force:.1f} N")
        if self._torque > self.config.max_torque:
            problems.append(f"wrench torque {self._torque:.2f} Nm > {self.config.max_torque:.2f} Nm")
        return problems


# The in-process twin ----------------------------------------------------------------------------
class SafetyWrapper(gym.Wrapper):
    """The safety filter on a SimTwinEnv: each action becomes the target it asks for from the
    measured pose, goes through the filter, and back to an action; an action the filter leaves
    alone reaches the env unchanged. While holding, the env gets the hold action (no motion,
    gripper stays). The twin is measured once per step (its wrench as the norm of the period's
    per-axis max-abs, an upper bound of every sample's), stamped with a clock that advances one
    control period per step and per reset, so nothing goes stale in-process: the box, speed and
    force limits and non-finite actions are what act here.

    info["safety"] = {"status": the filter's status, "clipped": bool, "action": the action executed}
    (at reset only "status"). A new episode stands for the operator's reset and resume: the twin
    is back at its start, at rest; a fault whose condition lasts still holds."""

    def __init__(self, env: gym.Env, config: SafetyConfig | None = None):
        super().__init__(env)
        twin = env.unwrapped
        robot, sim = twin.robot_cfg, twin.sim_cfg
        config = config if config is not None else safety_config_for(robot, sim)
        if config.command_interface != "pose":
            raise ValueError(f"safety.command_interface: the twin takes target poses, got {config.command_interface!r}")
        if config.control_hz != sim.control_hz:
            raise ValueError(f"safety.control_hz ({config.control_hz}) must equal sim.control_hz ({sim.control_hz})")
        unrendered = sorted(set(config.cameras) - set(sim.cameras))
        if unrendered:
            raise ValueError(f"safety.cameras: {unrendered} not rendered by the twin (sim.cameras: {sim.cameras})")
        self.filter = SafetyFilter(config)
        self._scale = (robot.max_translation_step, robot.max_rotation_step)
        # the twin ignores rotation about axes its task does not turn about: so does the step limit
        self._motion_mask = np.array([1.0] * 3 + [axis in twin.task.cfg.rotation_axes for axis in ROTATION_AXES])
        self._now_ns = 0

    def reset(self, **kwargs) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self._measure(obs)
        self.filter.reset(self._now_ns)
        self.filter.resume(self._now_ns)
        info["safety"] = {"status": self.filter.status}
        return obs, info

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (spec.ACTION_DIM,):
            raise ValueError(f"action must have shape ({spec.ACTION_DIM},) {spec.ACTION_LAYOUT}, got {a.shape}")
        pose = self.filter.measured_pose
        if pose is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if not np.all(np.isfinite(a)):
            command = self.filter.reject_command(f"action has a non-finite entry: {a.tolist()}", self._now_ns)
        else:
            target = spec.action_to_target_pose(np.clip(a[:6], -1.0, 1.0) * self._motion_mask, pose, *self._scale)
            command = self.filter.filter_pose(target, self._now_ns)
            gripper = self.filter.filter_gripper(a[6], self._now_ns)
        if self.filter.holding:
            executed = np.zeros(spec.ACTION_DIM)  # no motion, the gripper stays
        elif command.clipped:
            executed = np.append(spec.target_pose_to_action(command.value, pose, *self._scale), gripper)
        else:
            executed = a
        obs, reward, terminated, truncated, info = self.env.step(executed.astype(np.float32))
        self._measure(obs)
        info["safety"] = {"status": self.filter.status, "clipped": command.clipped, "action": executed}
        return obs, reward, terminated, truncated, info

    def _measure(self, obs: dict) -> None:
        self._now_ns += self.filter.period_ns
        state = obs["state"]
        self.filter.measure_pose(state["tcp_pose"], self._now_ns)
        self.filter.measure_wrench(state["wrench"][6:12], self._now_ns)  # max-abs force, then torque
        for camera in self.filter.config.cameras:
            self.filter.measure_camera(camera, self._now_ns)
